package SupportDesk::Test;

# Integration test harness: one private redis-server and one nginx (with the
# module loaded) per environment, on free loopback ports, in a temp dir.
#
#   my $env = SupportDesk::Test->new(
#       worker_processes => 1,          # default 1
#       redis_timeout    => '1s',       # supportdesk_redis_timeout, default 1s
#       http_conf        => '...',      # extra directives in http {}
#       server_conf      => '...',      # extra directives in server {}
#       location_conf    => '...',      # extra directives in location /api/v1/ {}
#       main_conf        => '...',      # extra directives at the top level
#       http_block       => '...',      # replaces everything the harness puts
#                                       # in http {} except temp paths/logs;
#                                       # %PORT% %REDIS_PORT% %REDIS_SOCK% %TMP%
#                                       # are substituted
#       redis_unix       => 1,          # also listen on %REDIS_SOCK% and use it
#       redis_args       => [...],      # extra redis-server arguments
#       redis_password   => 'pw',       # password of the harness's own client
#       redis_db         => 0,          # database of the harness's own client
#       error_log_level  => 'info',
#       start_nginx      => 1,
#   );
#
# Log check: when an environment is cleaned up (it goes out of scope, at
# done_testing, or at END) its nginx is stopped and every log it wrote
# (error.log across restarts and reloads, nginx.out, each `nginx -t`'s
# t<n>.err and t<n>.out) is searched for [alert], [crit], [emerg], "exited
# on signal" and sanitizer reports; that is one more test, failing with the
# lines quoted. A test that provokes such a line on purpose says so with
# $env->allow_log(qr/.../, file => qr/.../, maybe => 1) (see t/README.md).
#
# Assertions: envelope_ok (with the code's own message), error_ok (an exact
# message), fields_ok (the exact details), refused (those + Redis unchanged);
# t/README.md describes them, the configuration template and the log check.
#
# Environment: SD_MODULE (path of the .so), SD_NGINX (nginx binary),
# SD_REDIS_SERVER (redis-server binary), SD_KEEP=1 keeps the temp dir,
# SD_SHOW_CONF=1 prints each nginx.conf as it is started (t/README.md).
# SD_CLUSTER=1: cluster mode, each environment's storage is a Redis Cluster
# (SupportDesk::Cluster: 3 masters, 3 replicas) instead of one redis-server:
# nginx gets `supportdesk_redis_cluster <every master>;` where it gets
# `supportdesk_redis 127.0.0.1:<port>;` otherwise, $env->redis is a
# SupportDesk::Cluster::Client, and what only exists on one server
# (redis_port, stop_redis, kill_redis, a unix socket, a database other
# than 0) croaks; a test file that only makes sense on one server says so
# with single_redis_only('why'). A cluster serves the environments of a
# test file one after the other (emptied in between, see _acquire_cluster).
# SD_TLS=1: TLS mode, orthogonal to SD_CLUSTER: a test PKI made once per
# test process (SupportDesk::TLS), every redis-server the harness starts
# (every cluster node with SD_CLUSTER=1, the bus and the replication TLS
# too) gets a TLS port, and nginx is given that port with
# supportdesk_redis_ssl on, verify on, the test CA and the name, at http{}
# level; %REDIS_PORT% in a configuration text is the TLS port. The
# harness's own clients (Redis.pm has no TLS) use the plaintext port
# (redis_port), and at cleanup no nginx process may hold a connection to a
# plaintext port (part of the log check). plaintext_only('why') skips a
# file that cannot run in TLS mode.
# For t/quality.mk (sanitizer and valgrind runs, where SD_NGINX is a wrapper):
# SD_MASTER_PROCESS=off runs nginx with "master_process off" (one process;
# worker_pids() then returns that process), SD_START_TIMEOUT (default 10 s)
# and SD_STOP_TIMEOUT (default 5 s: TERM before KILL at cleanup) give a slow
# nginx (valgrind) time to start and to write its report at exit.
#
# Only core Perl modules plus Redis.pm and JSON::PP.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken refaddr);
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time sleep);
use Test::More ();
use Test2::API ();

use Redis;
use SupportDesk::Invariants;
use SupportDesk::Ports;
# loaded before this file's END block is compiled, so that its own END (which
# stops every cluster) runs after ours (which stops the nginx using them)
use SupportDesk::Cluster;
use SupportDesk::TLS;

our @EXPORT_OK = qw(envelope_ok error_ok fields_ok json_encode json_decode
                    wait_until repo_root module_path nginx_bin pct
                    cluster_mode single_redis_only single_pass_only
                    tls_mode plaintext_only plain_pass_only);

my $JSON = JSON::PP->new->utf8->canonical;

# every process started by any environment, killed at END in the owner
my %ALL_PIDS;
my $OWNER = $$;

# environments not cleaned up yet (weak references), in creation order
my %LIVE;
my $ENV_N = 0;
# a log check that failed once no test could be emitted any more
my $LATE_FAILURE = 0;

sub repo_root { abs_path(File::Spec->catdir(dirname(__FILE__), '..', '..', '..')) }

sub module_path {
    return $ENV{SD_MODULE} if $ENV{SD_MODULE};
    return File::Spec->catfile(repo_root(), 'build', 'ngx_http_supportdesk_module.so');
}

sub nginx_bin        { $ENV{SD_NGINX} || '/usr/sbin/nginx' }
sub redis_server_bin { $ENV{SD_REDIS_SERVER} || 'redis-server' }
sub cluster_mode     { $ENV{SD_CLUSTER} ? 1 : 0 }
sub tls_mode         { $ENV{SD_TLS} ? 1 : 0 }

# A test file (or part) that only makes sense on one redis-server: in
# cluster mode the file is skipped with that reason. Called before any test.
sub single_redis_only {
    my ($why) = @_;
    croak 'single_redis_only: say why' unless defined $why && length $why;
    Test::More::plan(skip_all => "single Redis only: $why") if cluster_mode();
}

# A test file that sends nothing to the storage (nginx -t, files, a fake
# Redis): it runs once, in the plain single-Redis pass; the cluster pass and
# the TLS passes skip it with that reason.
sub single_pass_only {
    my ($why) = @_;
    croak 'single_pass_only: say why' unless defined $why && length $why;
    plain_pass_only($why);
    Test::More::plan(skip_all => "runs in the single-Redis pass only: $why") if cluster_mode();
}

# After an app's jobs are done: the runner that ran the last one drops the
# app from the registry of apps with work (sd:jobapps, writing the app's
# sd:{app}:jobgone first).  A test that compares snapshots of Redis waits
# for that, so that the runner's housekeeping does not fall between them.
sub jobs_idle {
    my ($self, $app, $timeout) = @_;
    my $r = $self->redis;
    return wait_until(sub { !defined $r->zscore('sd:jobapps', $app) }, $timeout // 20, 0.02);
}

# A test file that TLS mode changes nothing for (its Redis is a fake, or it
# sets up TLS itself): the TLS passes skip it with that reason.
sub plain_pass_only {
    my ($why) = @_;
    croak 'plain_pass_only: say why' unless defined $why && length $why;
    Test::More::plan(skip_all => "runs in the plain pass only: $why") if tls_mode();
}

# A test file that cannot run in TLS mode (SD_TLS=1): skipped with that
# reason. Called before any test.
sub plaintext_only {
    my ($why) = @_;
    croak 'plaintext_only: say why' unless defined $why && length $why;
    Test::More::plan(skip_all => "plaintext Redis only: $why") if tls_mode();
}

sub json_encode { $JSON->encode($_[0]) }
sub json_decode { my $d = eval { $JSON->decode($_[0]) }; $d }

sub wait_until {
    my ($cb, $timeout, $step) = @_;
    $timeout //= 5;
    $step    //= 0.05;
    my $end = time + $timeout;
    while (1) {
        my $r = $cb->();
        return $r if $r;
        return 0 if time > $end;
        sleep $step;
    }
}

# free loopback ports below the ephemeral range (SupportDesk::Ports)
sub free_port { return SupportDesk::Ports::free_port() }

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        worker_processes => 1,
        redis_timeout    => '1s',
        error_log_level  => 'info',
        start_nginx      => 1,
        redis_db         => 0,
        %o,
        owner => $$,
        n     => ++$ENV_N,
        allow => [],
    }, $class;
    my ($file, $line);
    for my $i (0 .. 5) {
        my @c = caller $i or last;
        ($file, $line) = @c[1, 2];
        last unless $c[0] =~ /^SupportDesk::/;
    }
    $self->{created_at} = "$file line $line";
    $LIVE{ refaddr $self } = $self;
    weaken $LIVE{ refaddr $self };

    my $keep = $ENV{SD_KEEP} ? 1 : 0;
    $self->{tmp} = tempdir('sd-test-XXXXXX', TMPDIR => 1, CLEANUP => !$keep);
    chmod 0755, $self->{tmp};    # nginx workers (nobody when run as root) traverse it
    Test::More::diag("SD_KEEP: temp dir $self->{tmp}") if $keep;

    croak 'TLS mode: Redis speaks TLS on TCP only, no unix socket (redis_unix)'
        if tls_mode() && $self->{redis_unix};
    if (cluster_mode()) {
        croak 'cluster mode: no unix socket (redis_unix)' if $self->{redis_unix};
        croak 'cluster mode: a cluster has only database 0 (redis_db)' if $self->{redis_db};
        $self->{cluster} = _acquire_cluster($self->{redis_args} || [], $self->{redis_password});
    } else {
        $self->{redis_port} = free_port();
        if (tls_mode()) {
            $self->{redis_tls_port} = free_port();
            $self->{redis_tls_port} = free_port() while $self->{redis_tls_port} == $self->{redis_port};
        }
        $self->{redis_sock} = "$self->{tmp}/redis.sock";
        $self->start_redis;
    }
    # once the storage listens (a cluster's 12 or, with TLS, 18 ports were
    # chosen free the same way, and one was seen to be nginx's): the kernel
    # hands out no port that is bound
    $self->{port} = free_port();
    $self->start_nginx if $self->{start_nginx};
    return $self;
}

sub tmp        { $_[0]{tmp} }
sub port       { $_[0]{port} }
sub nginx_pid  { $_[0]{nginx_pid} }
sub cluster    { $_[0]{cluster} }
sub redis_port { $_[0]->_single('redis_port'); $_[0]{redis_port} }
sub redis_sock { $_[0]->_single('redis_sock'); $_[0]{redis_sock} }
sub redis_pid  { $_[0]->_single('redis_pid');  $_[0]{redis_pid} }
# TLS mode: the TLS port of the one Redis (undef otherwise)
sub redis_tls_port { $_[0]->_single('redis_tls_port'); $_[0]{redis_tls_port} }
# the port of the one Redis that nginx (or a replica, tls-replication) is
# given: its TLS port in TLS mode, else redis_port (which the harness's own
# clients always use)
sub nginx_redis_port {
    my ($self) = @_;
    $self->_single('nginx_redis_port');
    return $self->{redis_tls_port} // $self->{redis_port};
}
# every Redis port nginx must never connect to: in TLS mode the plaintext
# ports (of the one Redis, or of every cluster node)
sub plaintext_redis_ports {
    my ($self) = @_;
    return $self->{cluster}->plain_ports if $self->{cluster};
    return grep { defined } $self->{redis_port};
}

# what exists on one redis-server only: a test calling it in cluster mode
# fails loudly (it should have said single_redis_only, or skipped that part)
sub _single {
    my ($self, $what) = @_;
    croak "$what: single Redis only (SD_CLUSTER is set; \$env->cluster is the cluster)"
        if $self->{cluster};
}

# the connection options of redis/sd-check for this environment's storage
sub sd_check_args {
    my ($self) = @_;
    return ('-c', '-p', ($self->{cluster}->seeds)[0] =~ /(\d+)\z/) if $self->{cluster};
    return ('-p', $self->{redis_port});
}

# ---------------------------------------------------------------- cluster
#
# One cluster serves the environments of a file one after the other: when
# an environment is cleaned up its cluster, if it is as it was created (no
# node killed or paused, no slot moved: SupportDesk::Cluster::reset), is
# emptied (FLUSHALL, SCRIPT FLUSH, CONFIG RESETSTAT) and kept for the next
# environment with the same redis_args; two environments alive at once
# each have their own. Starting a cluster costs about 3 s (most of it
# redis-cli --cluster create waiting for the nodes to meet, then the news of
# who replicates whom going round), emptying it a few milliseconds.
my %CLUSTER_POOL;

sub _pool_key { my ($args, $password) = @_; join "\0", tls_mode(), $password // '', @$args }

sub _acquire_cluster {
    my ($args, $password) = @_;
    my $k = _pool_key($args, $password);
    if (my $c = pop @{ $CLUSTER_POOL{$k} || [] }) { return $c }
    my $c = SupportDesk::Cluster->new(redis_args => $args, tls => tls_mode(),
        (defined $password ? (password => $password) : ()));
    Test::More::note(sprintf 'SD_CLUSTER: cluster of %s started in %.1fs (%s)',
        join(' ', $c->seeds), $c->started_in, $c->dir);
    return $c;
}

sub _release_cluster {
    my ($self) = @_;
    my $c = delete $self->{cluster} or return;
    delete $self->{redis};
    if ($c->reset) { push @{ $CLUSTER_POOL{ _pool_key($self->{redis_args} || [], $self->{redis_password}) } }, $c }
    else           { $c->stop }
}

sub _spawn {
    my ($self, $out, @cmd) = @_;
    my $pid = fork;
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $out or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    $ALL_PIDS{$pid} = $cmd[0];
    return $pid;
}

sub _alive {
    my ($pid) = @_;
    return 0 unless $pid;
    my $r = waitpid($pid, WNOHANG);
    return 0 if $r == $pid || $r == -1;
    return 1;
}

sub _slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    my $c = <$fh>;
    return $c // '';
}

# ---------------------------------------------------------------- redis

sub start_redis {
    my ($self) = @_;
    $self->_single('start_redis');
    my @args = (redis_server_bin(),
        '--port', $self->{redis_port}, '--bind', '127.0.0.1',
        '--save', '', '--appendonly', 'no', '--dir', $self->{tmp},
        '--daemonize', 'no', '--protected-mode', 'no',
        '--logfile', '');
    push @args, '--unixsocket', $self->{redis_sock}, '--unixsocketperm', '777'
        if $self->{redis_unix};
    push @args, SupportDesk::TLS::redis_args($self->{redis_tls_port}) if $self->{redis_tls_port};
    push @args, @{ $self->{redis_args} || [] };
    $self->{redis_pid} = $self->_spawn("$self->{tmp}/redis.log", @args);

    my $ok = wait_until(sub {
        return -1 unless _alive($self->{redis_pid});
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $self->{redis_port}, Proto => 'tcp', Timeout => 1) or return 0;
        print $s "PING\r\n";
        my $l = '';
        my $rin = '';
        vec($rin, fileno($s), 1) = 1;
        if (select(my $r = $rin, undef, undef, 1) > 0) { sysread($s, $l, 100) }
        close $s;
        return $l =~ /^[+-]/ ? 1 : 0;
    }, 10);
    if (!$ok || $ok == -1) {
        croak "redis-server did not start:\n" . _slurp("$self->{tmp}/redis.log");
    }
    delete $self->{redis};
    return 1;
}

sub redis {
    my ($self) = @_;
    return $self->{redis} if $self->{redis};
    return $self->{redis} = $self->{cluster}->client if $self->{cluster};
    my $r = Redis->new(
        server => "127.0.0.1:$self->{redis_port}",
        reconnect => 0, cnx_timeout => 2, read_timeout => 5, write_timeout => 5,
        name => $SupportDesk::Cluster::CLIENT_NAME,
        ($self->{redis_password} ? (password => $self->{redis_password}) : ()),
    );
    $r->select($self->{redis_db}) if $self->{redis_db};
    return $self->{redis} = $r;
}

# SAVE (unless save => 0) then SIGTERM: a later start_redis reloads the data
sub stop_redis {
    my ($self, %o) = @_;
    $self->_single('stop_redis');
    my $save = exists $o{save} ? $o{save} : 1;
    if ($save) { eval { $self->redis->save; 1 } or croak "redis SAVE failed: $@" }
    if ($self->{redis}) { eval { $self->{redis}->quit }; delete $self->{redis} }
    $self->_kill_wait($self->{redis_pid}, 'TERM', 5);
    delete $self->{redis_pid};
}

# SIGKILL, no save: the data is lost
sub kill_redis {
    my ($self) = @_;
    $self->_single('kill_redis');
    delete $self->{redis};
    $self->_kill_wait($self->{redis_pid}, 'KILL', 5);
    delete $self->{redis_pid};
}

# STOP / CONT. In cluster mode every node of the cluster: keep such a pause
# below the cluster's node timeout (2 s), or failovers begin
sub pause_redis {
    my $s = shift;
    if ($s->{cluster}) { $s->{cluster}->pause_all } else { kill 'STOP', $s->{redis_pid} }
    $s->{redis_paused} = 1;
}
sub resume_redis {
    my $s = shift;
    if ($s->{cluster}) { $s->{cluster}->resume_all } else { kill 'CONT', $s->{redis_pid} }
    $s->{redis_paused} = 0;
}

sub _kill_wait {
    my ($self, $pid, $sig, $timeout) = @_;
    return 1 unless $pid;
    kill $sig, $pid;
    my $end = time + ($timeout // 5);
    while (time < $end) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid || $r == -1) { delete $ALL_PIDS{$pid}; return 1 }
        sleep 0.02;
    }
    kill 'CONT', $pid;
    kill 'KILL', $pid;
    waitpid($pid, 0);
    delete $ALL_PIDS{$pid};
    return 0;
}

# provisions an API key the way operators do; returns the plain key
sub create_key {
    my ($self, $app, $name, $plain) = @_;
    $name //= 'test';
    $plain //= 'sdk_' . join('', map { sprintf '%02x', int rand 256 } 1 .. 16);
    $self->redis->hset('sd:apikey:' . sha256_hex($plain), 'app', $app, 'name', $name);
    return $plain;
}

sub revoke_key {
    my ($self, $plain) = @_;
    return $self->redis->del('sd:apikey:' . sha256_hex($plain));
}

# every key of the database (or those matching $pattern) with its contents
sub snapshot {
    my ($self, $pattern) = @_;
    my $r = $self->redis;
    my %snap;
    for my $k (SupportDesk::Invariants::scan_keys($r, $pattern // '*')) {
        my $t = $r->type($k);
        my $v;
        if    ($t eq 'hash')   { $v = { $r->hgetall($k) } }
        elsif ($t eq 'zset')   { $v = [ $r->zrange($k, 0, -1, 'WITHSCORES') ] }
        elsif ($t eq 'string') { $v = $r->get($k) }
        elsif ($t eq 'set')    { $v = [ sort $r->smembers($k) ] }
        elsif ($t eq 'list')   { $v = [ $r->lrange($k, 0, -1) ] }
        elsif ($t eq 'stream') { $v = [ map { [ $_->[0], @{ $_->[1] } ] } @{ $r->xrange($k, '-', '+') } ] }
        else                   { $v = "<$t>" }
        $snap{$k} = [ $t, $v ];
    }
    return \%snap;
}

sub check_invariants {
    my ($self, $app) = @_;
    return SupportDesk::Invariants::check($self->redis, $app);
}

sub invariants_ok {
    my ($self, $app, $name) = @_;
    my @p = $self->check_invariants($app);
    Test::More::ok(!@p, $name // "invariants hold for app $app")
        or Test::More::diag(join "\n", @p);
    return !@p;
}

# ---------------------------------------------------------------- nginx

sub _subst {
    my ($self, $text) = @_;
    $text =~ s/%PORT%/$self->{port}/g;
    $self->_single($1) if $text =~ /(%REDIS_(?:PORT|SOCK)%)/;
    # the port nginx is given: the TLS one in TLS mode
    if ($text =~ /%REDIS_PORT%/) { my $p = $self->nginx_redis_port; $text =~ s/%REDIS_PORT%/$p/g }
    $text =~ s/%REDIS_SOCK%/$self->{redis_sock}/g;
    $text =~ s/%TMP%/$self->{tmp}/g;
    return $text;
}

sub main_conf_prefix {
    my ($self, %o) = @_;
    my $tmp = $self->{tmp};
    my $mod = module_path();
    my $wp = $o{worker_processes} // $self->{worker_processes};
    my $lvl = $o{error_log_level} // $self->{error_log_level};
    my $mp = _single_process() ? 'off' : 'on';
    return <<"EOF";
load_module $mod;
daemon off;
master_process $mp;
worker_processes $wp;
error_log $tmp/error.log $lvl;
pid $tmp/nginx.pid;
EOF
}

sub http_common {
    my ($self) = @_;
    my $tmp = $self->{tmp};
    return <<"EOF";
    client_body_temp_path $tmp/client_body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    access_log $tmp/access.log;
EOF
}

sub nginx_conf {
    my ($self) = @_;
    my $http;
    # TLS mode: at http{} level, every location inherits it
    my $tls = tls_mode() ? '    ' . SupportDesk::TLS::nginx_directives() : '';
    if (defined $self->{http_block}) {
        $http = $tls . $self->_subst($self->{http_block});
    } else {
        my $c = $self->{cluster};
        my $redis = $c
            ? 'supportdesk_redis_cluster ' . join(' ', tls_mode() ? $c->tls_seeds : $c->seeds)
            : 'supportdesk_redis '
              . ($self->{redis_unix} ? "unix:$self->{redis_sock}" : '127.0.0.1:' . $self->nginx_redis_port);
        $redis .= ";\n$tls";
        my $to = defined $self->{redis_timeout}
            ? "supportdesk_redis_timeout $self->{redis_timeout};" : '';
        my $hc = $self->_subst($self->{http_conf} // '');
        my $sc = $self->_subst($self->{server_conf} // '');
        my $lc = $self->_subst($self->{location_conf} // '');
        $http = <<"EOF";
    $redis
    $to
    $hc
    server {
        listen 127.0.0.1:$self->{port};
        location /api/v1/ {
            supportdesk;
            $lc
        }
        location / {
            return 200 "legacy\\n";
        }
        $sc
    }
EOF
    }
    my $main = $self->_subst($self->{main_conf} // '');
    return $self->main_conf_prefix . $main . "\n"
        . "events { worker_connections 1024; }\n"
        . "http {\n" . $self->http_common . $http . "}\n";
}

sub start_nginx {
    my ($self) = @_;
    croak "nginx already running" if $self->{nginx_pid} && _alive($self->{nginx_pid});
    my $tmp = $self->{tmp};
    my $conf = "$tmp/nginx.conf";
    open my $fh, '>', $conf or croak "$conf: $!";
    print $fh $self->nginx_conf;
    close $fh;
    # the API locations, for the answer recording (SD_RECORD_DIR)
    $self->{api_prefixes} = [ $self->nginx_conf =~ /location\s+(\S+)\s*\{\s*supportdesk\s*;/g ];
    Test::More::diag("SD_SHOW_CONF: $conf of the environment created at $self->{created_at}:\n"
                     . $self->nginx_conf) if $ENV{SD_SHOW_CONF};

    $self->{nginx_pid} = $self->_spawn("$tmp/nginx.out", nginx_bin(),
        '-p', "$tmp/", '-c', $conf, '-e', "$tmp/error.log");

    my $ok = wait_until(sub {
        return -1 unless _alive($self->{nginx_pid});
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $self->{port}, Proto => 'tcp', Timeout => 1);
        return 0 unless $s;
        close $s;
        return 1;
    }, $ENV{SD_START_TIMEOUT} || 10);
    if (!$ok || $ok == -1) {
        my $msg = "nginx did not start (module " . module_path() . "):\n"
            . _slurp("$tmp/nginx.out") . _slurp("$tmp/error.log");
        $self->_kill_wait($self->{nginx_pid}, 'KILL', 2) if $self->{nginx_pid};
        delete $self->{nginx_pid};
        croak $msg;
    }
    # wait for the workers to be up as well
    return 1 if _single_process();
    wait_until(sub { my @w = $self->worker_pids; @w >= ($self->{worker_processes} =~ /^\d+$/ ? $self->{worker_processes} : 1) }, 5);
    return 1;
}

# graceful stop (QUIT); returns true if nginx exited within $timeout
sub stop_nginx {
    my ($self, %o) = @_;
    my $pid = delete $self->{nginx_pid} or return 1;
    $self->_tls_socket_check($pid);
    my $sig = $o{signal} // 'QUIT';
    my $timeout = $o{timeout} // 10;
    kill $sig, $pid;
    my $end = time + $timeout;
    while (time < $end) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid || $r == -1) {
            $self->{nginx_exit_status} = $?;
            delete $ALL_PIDS{$pid};
            return 1;
        }
        sleep 0.05;
    }
    _kill_nginx($pid);
    return 0;
}

sub reload_nginx {
    my ($self) = @_;
    kill 'HUP', $self->{nginx_pid};
}

sub _single_process { ($ENV{SD_MASTER_PROCESS} // 'on') eq 'off' }

sub worker_pids {
    my ($self) = @_;
    my $master = $self->{nginx_pid} or return;
    # master_process off: the one nginx process is the worker
    return _alive($master) ? ($master) : () if _single_process();
    return sort { $a <=> $b } _children_of($master);
}

sub nginx_error_log { _slurp("$_[0]{tmp}/error.log") }

# a test: TEXT (a scrape of supportdesk_metrics) passes promtool check
# metrics (Debian's prometheus package); NAME says which scrape
sub promtool_ok {
    my ($self, $text, $name) = @_;
    my $file = "$self->{tmp}/scrape.prom";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh;
    my $out = `promtool check metrics < '$file' 2>&1`;
    return Test::More::is($? >> 8, 0, "promtool check metrics: $name") || Test::More::diag($out);
}

# (exit code, output, n) of `nginx -t` for a whole config text; %TMP% etc.
# are substituted. With http_body => '...' the harness wraps it in a full
# config. Its files are %TMP%/t<n>.conf, its error log t<n>.err and its
# output t<n>.out (allow_log(..., file => qr/^t<n>\./) names them).
sub nginx_t {
    my ($self, $conf, %o) = @_;
    if ($o{http_body}) {
        $conf = $self->main_conf_prefix
            . "events { }\nhttp {\n" . $self->http_common . $conf . "\n}\n";
    }
    $conf = $self->_subst($conf);
    my $n = ++$self->{nginx_t_n};
    my $file = "$self->{tmp}/t$n.conf";
    open my $fh, '>', $file or croak "$file: $!";
    print $fh $conf;
    close $fh;
    my $cmd = join ' ', map { "'$_'" } nginx_bin(), '-t', '-p', "$self->{tmp}/",
        '-c', $file, '-e', "$self->{tmp}/t$n.err";
    my $out = `$cmd 2>&1`;
    my $rc = $? >> 8;
    # kept for the log check: what nginx -t printed (a sanitizer report
    # goes there, not to the error log)
    if (open my $o, '>', "$self->{tmp}/t$n.out") { print $o $out; close $o }
    $out .= _slurp("$self->{tmp}/t$n.err");
    return ($rc, $out, $n);
}

# ---------------------------------------------------------------- HTTP

sub http_bytes {
    my ($self, $method, $path, %o) = @_;
    my $h = $o{headers} || {};
    my $body = $o{body};
    my %lc = map { lc($_) => 1 } keys %$h;
    if (ref $body) {
        $body = json_encode($body);
        $h = { 'Content-Type' => 'application/json', %$h } unless $lc{'content-type'};
    }
    my $req = "$method $path HTTP/1.1\r\n";
    $req .= "Host: 127.0.0.1:$self->{port}\r\n" unless $lc{host};
    $req .= "Connection: close\r\n" unless $lc{connection};
    for my $k (sort keys %$h) {
        my $v = $h->{$k};
        for my $one (ref $v eq 'ARRAY' ? @$v : ($v)) {
            $req .= "$k: $one\r\n";
        }
    }
    if (defined $body) {
        $req .= "Content-Length: " . length($body) . "\r\n"
            unless $lc{'content-length'} || $lc{'transfer-encoding'};
        $req .= "\r\n" . $body;
    } else {
        $req .= "\r\n";
    }
    return $req;
}

sub request {
    my ($self, $method, $path, %o) = @_;
    return $self->raw_request($self->http_bytes($method, $path, %o), %o);
}

# customers API convenience: api('PATCH', 'user_1', $key, {email => ...})
# $ext is used raw in the path (percent-encode it yourself where needed);
# $key undef = no X-API-Key header; $json may be a ref (encoded) or a string
sub api {
    my ($self, $method, $ext, $key, $json, %o) = @_;
    my $path = $ext =~ m{^/} ? $ext : "/api/v1/customers/$ext";
    my %h = %{ $o{headers} || {} };
    $h{'X-API-Key'} = $key if defined $key;
    if (defined $json) {
        $h{'Content-Type'} = 'application/json' unless grep { lc eq 'content-type' } keys %h;
    }
    return $self->request($method, $path, %o, headers => \%h, body => $json);
}

sub raw_request {
    my ($self, $bytes, %o) = @_;
    my ($res) = $self->parallel([$bytes], %o);
    return $res;
}

# $head: the answer to a HEAD request (headers only, whatever they announce)
sub _parse_response {
    my ($buf, $eof, $head_only) = @_;
    my $i = index($buf, "\r\n\r\n");
    return undef if $i < 0;
    my $head = substr($buf, 0, $i);
    my $rest = substr($buf, $i + 4);
    my @lines = split /\r\n/, $head;
    my $sl = shift @lines;
    my ($status, $reason) = $sl =~ m{^HTTP/\d\.\d (\d{3}) ?(.*)$} or
        return { status => 598, error => "bad status line: $sl", complete => 1 };
    my %h;
    for my $l (@lines) {
        my ($k, $v) = $l =~ /^([^:]+):\s*(.*?)\s*$/ or next;
        $k = lc $k;
        if (exists $h{$k}) {
            $h{$k} = [ ref $h{$k} ? @{ $h{$k} } : $h{$k} ];
            push @{ $h{$k} }, $v;
        } else {
            $h{$k} = $v;
        }
    }
    my $res = { status => $status, reason => $reason, headers => \%h };
    if ($head_only) { $res->{body} = ''; $res->{complete} = 1; return $res }
    my $te = $h{'transfer-encoding'} // '';
    if ($te =~ /chunked/i) {
        my $body = '';
        my $p = 0;
        while (1) {
            my $e = index($rest, "\r\n", $p);
            return undef if $e < 0;
            my ($len) = substr($rest, $p, $e - $p) =~ /^([0-9a-fA-F]+)/;
            return { %$res, status => 598, error => 'bad chunk', complete => 1 } unless defined $len;
            $len = hex $len;
            $p = $e + 2;
            if ($len == 0) { $res->{body} = $body; $res->{complete} = 1; return $res }
            return undef if length($rest) < $p + $len + 2;
            $body .= substr($rest, $p, $len);
            $p += $len + 2;
        }
    } elsif (defined $h{'content-length'}) {
        return undef if length($rest) < $h{'content-length'};
        $res->{body} = substr($rest, 0, $h{'content-length'});
        $res->{complete} = 1;
        return $res;
    } else {
        return undef unless $eof;
        $res->{body} = $rest;
        $res->{complete} = 1;
        return $res;
    }
}

# Sends every request of @$list on its own connection at once (all written
# before any answer is read) and returns the responses in the same order.
# Each is {status, headers (lowercase names), body, json, elapsed}; status 599
# means no complete response within the timeout (error says why).
# Options: timeout (default 5 s), close_after => seconds (close the sockets
# after that long without reading the answers: returns nothing useful),
# send_when => [cond, ...] (request i is written only once $cond->[i], when
# defined, returns true; polled every 10 ms: a request sent in a later turn
# of nginx's event loop than those before it).
sub parallel {
    my ($self, $list, %o) = @_;
    my $timeout = $o{timeout} // 5;
    local $SIG{PIPE} = 'IGNORE';
    my $t0 = time;
    my @c;
    for my $bytes (@$list) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $self->{port}, Proto => 'tcp', Timeout => $timeout);
        if (!$s) {
            push @c, { done => 1, res => { status => 599, error => "connect: $!" } };
            next;
        }
        $s->blocking(0);
        push @c, { s => $s, out => $bytes, off => 0, in => '', writing => 1,
                   head => scalar($bytes =~ /\AHEAD /),
                   when => ($o{send_when} || [])->[$#c + 1] };
        $c[-1]{res} = undef;
    }
    my $deadline = $t0 + $timeout;
    while (1) {
        my @open = grep { !$_->{done} } @c;
        last unless @open;
        my $left = $deadline - time;
        last if $left <= 0;
        if (defined $o{close_after} && time - $t0 >= $o{close_after}) {
            for my $x (@open) { close $x->{s}; $x->{done} = 1; $x->{res} = { status => 0, closed => 1 } }
            last;
        }
        my ($rin, $win) = ('', '');
        my $waiting = 0;
        for my $x (@open) {
            my $fd = fileno $x->{s};
            vec($rin, $fd, 1) = 1;
            if ($x->{when} && !$x->{when}->()) { $waiting = 1; next }
            delete $x->{when};
            vec($win, $fd, 1) = 1 if $x->{writing} && $x->{off} < length $x->{out};
        }
        my $wait = $left;
        $wait = 0.05 if defined $o{close_after} && $wait > 0.05;
        $wait = 0.01 if $waiting && $wait > 0.01;
        my $n = select(my $rout = $rin, my $wout = $win, undef, $wait);
        next if $n <= 0;
        for my $x (@open) {
            my $fd = fileno $x->{s};
            if ($x->{writing} && vec($wout, $fd, 1)) {
                my $w = syswrite($x->{s}, $x->{out}, 262144, $x->{off});
                if (defined $w) { $x->{off} += $w }
                elsif (!$!{EAGAIN} && !$!{EWOULDBLOCK} && !$!{EINTR}) {
                    $x->{writing} = 0;
                    $x->{write_error} = "$!";
                }
            }
            if (vec($rout, $fd, 1)) {
                my $r = sysread($x->{s}, my $chunk, 262144);
                if ($r) {
                    $x->{in} .= $chunk;
                    my $res = _parse_response($x->{in}, 0, $x->{head});
                    if ($res && $res->{complete}) { $x->{res} = $res; $x->{done} = 1 }
                } elsif (defined $r || (!$!{EAGAIN} && !$!{EWOULDBLOCK} && !$!{EINTR})) {
                    my $err = defined $r ? 'EOF' : "$!";
                    my $res = _parse_response($x->{in}, 1, $x->{head});
                    $x->{res} = ($res && $res->{complete}) ? $res
                        : { status => 599, error => "connection closed ($err) after "
                              . length($x->{in}) . " bytes: $x->{in}" };
                    $x->{done} = 1;
                }
            }
            if ($x->{done}) { $x->{res}{elapsed} = time - $t0; close $x->{s} }
        }
    }
    for my $x (@c) {
        next if $x->{done};
        $x->{res} = { status => 599, error => "timeout after ${timeout}s, got: $x->{in}",
                      elapsed => time - $t0 };
        close $x->{s} if $x->{s};
    }
    $_->{res}{write_error} = $_->{write_error} for grep { $_->{write_error} } @c;
    my @res = map { $_->{res} } @c;
    for my $r (@res) {
        $r->{headers} ||= {};
        $r->{body} //= '';
        $r->{json} = json_decode($r->{body}) if length $r->{body};
    }
    if ($ENV{SD_RECORD_DIR} && !$o{unrecorded}) { $self->record_answer($list->[$_], $res[$_]) for 0 .. $#res }
    return @res;
}

# ---------------------------------------------------------------- answer recording
#
# SD_RECORD_DIR=dir (make test sets it): every answer the suite receives is
# appended to dir/<test file>.<pid>.rec, and t/openapi/check-answers.js
# validates them all against openapi.yaml at the end (t/openapi/README.md).
# A record is one line "SDREC <meta bytes> <body bytes>", the meta JSON
# (ASCII; every string holds bytes, one character each), a newline, the
# response body as received, a newline.  Meta: the caller (.t file, line),
# the environment's API location prefixes, the request's method, target,
# HTTP version and headers (values cut at 256 bytes), its body when the
# answer was a 2xx (the validator checks accepted requests against the
# document too), else its first 256 bytes; the status, the response headers.
# parallel() records every request it sends (so request, api and
# raw_request do), unless told unrecorded => 'why' (only for answers
# rendered from data a fake Redis made up, which the API could never have
# stored); a test that reads answers off its own socket calls
# $env->record_answer($request_bytes, $res) itself.

my $REC_JSON = JSON::PP->new->ascii->canonical;
my %REC_FH;

sub record_answer {
    my ($self, $req, $res) = @_;
    my $dir = $ENV{SD_RECORD_DIR} or return;
    my ($file, $line) = ('?', 0);
    for my $i (0 .. 30) {
        my @c = caller $i or last;
        if ($c[1] =~ /\.t\z/) { ($file, $line) = @c[1, 2]; last }
    }
    my %m = (file => $file, line => $line, prefixes => $self->{api_prefixes} || [],
             status => $res->{status} + 0, headers => $res->{headers} || {});
    $m{error} = substr($res->{error}, 0, 256) if defined $res->{error};
    my $i = index($req, "\r\n\r\n");
    my $head = $i < 0 ? $req : substr($req, 0, $i);
    my $body = $i < 0 ? '' : substr($req, $i + 4);
    my @lines = split /\r\n/, $head;
    my $rl = shift(@lines) // '';
    if ($rl =~ m{\A([^ ]+) ([^ ]+) HTTP/(\d\.\d)\z}) {
        @m{qw(method target version)} = ($1, $2, $3);
    } else {
        $m{request_line} = substr($rl, 0, 256);
    }
    my @h;
    for my $l (@lines) {
        my ($k, $v) = $l =~ /\A([^:]*):[ \t]*(.*?)[ \t]*\z/s or do { push @h, [ '', substr($l, 0, 256) ]; next };
        push @h, [ lc $k, substr($v, 0, 256) ];
    }
    $m{request_headers} = \@h;
    $m{request_body} = $res->{status} =~ /^2/ ? $body : substr($body, 0, 256);
    $m{request_body_length} = length $body;
    my $meta = $REC_JSON->encode(\%m);
    my $rbody = $res->{body} // '';
    my $path = "$dir/" . ($file =~ s{.*/}{}r) . ".$$.rec";
    my $fh = $REC_FH{$path};
    if (!$fh) {
        open $fh, '>>:raw', $path or croak "SD_RECORD_DIR: $path: $!";
        $REC_FH{$path} = $fh;
    }
    my $rec = 'SDREC ' . length($meta) . ' ' . length($rbody) . "\n$meta\n$rbody\n";
    defined syswrite($fh, $rec) or croak "SD_RECORD_DIR: $path: $!";
}

# ---------------------------------------------------------------- asserts

# The message of each error code that has one message only (the module's
# status table, ngx_http_supportdesk_envelope.c, and its explicit ones):
# envelope_ok() and refused() check it whenever they are given the code.
our %MESSAGE = (
    UNAUTHORIZED           => 'missing or unknown API key',
    METHOD_NOT_ALLOWED     => 'method not allowed on this route',
    UNSUPPORTED_MEDIA_TYPE => 'Content-Type must be application/json',
    SERVICE_UNAVAILABLE    => 'storage is unavailable',
    GATEWAY_TIMEOUT        => 'storage did not answer in time',
    CUSTOMER_NOT_FOUND     => 'no customer with that externalId in this app',
    NOTE_NOT_FOUND         => 'no such note on that customer',
    CUSTOMER_EMAIL_EXISTS  => 'another customer of this app has that email',
    REQUEST_TIMEOUT        => 'the request body did not arrive within client_body_timeout',
    RATE_LIMITED           => 'too many requests, retry later',
    PRECONDITION_FAILED    => "the customer's current ETag does not satisfy the condition",
    IDEMPOTENCY_KEY_REUSED => 'this Idempotency-Key was used with another method, route or body',
    IDEMPOTENCY_KEY_IN_USE => 'a request with this Idempotency-Key is still being applied',
    CURSOR_EXPIRED         => 'events after this cursor are no longer retained: resynchronise with GET /customers',
);
# The message of a VALIDATION_ERROR with details: its first violation,
# "<field> <message>", cut to 512 bytes on a UTF-8 boundary of the field
sub first_violation_message {
    my ($d) = @_;
    my ($f, $m) = ($d->{field} // '', $d->{message} // '');
    utf8::encode($f) if utf8::is_utf8($f);
    utf8::encode($m) if utf8::is_utf8($m);
    my $len = length $f;
    my $max = 511 - length $m;
    if ($len > $max) {
        $len = $max;
        $len-- while $len > 0 && (ord(substr($f, $len, 1)) & 0xc0) == 0x80;
    }
    my $t = substr($f, 0, $len) . ' ' . $m;
    utf8::decode($t);
    return $t;
}

sub _same_text {
    my ($got, $want) = @_;
    return 0 unless defined $got && !ref $got;
    return ref $want eq 'Regexp' ? $got =~ $want : $got eq $want;
}

# $message: undef = the code's own (%MESSAGE, or the first violation's
# for a VALIDATION_ERROR with details), a string or a qr//
sub _envelope_problems {
    my ($res, $status, $code, $message) = @_;
    my @p;
    push @p, "status $res->{status}, want $status" if $res->{status} != $status;
    my $ct = $res->{headers}{'content-type'} // '<none>';
    push @p, "Content-Type '$ct'" if ref $ct || $ct ne 'application/json; charset=utf-8';
    my $j = $res->{json};
    if (ref $j ne 'HASH') {
        push @p, "body is not a JSON object";
        return @p;
    }
    my $want_success = $status < 400 ? 1 : 0;
    if (!JSON::PP::is_bool($j->{success})) {
        push @p, "success is not a boolean";
    } elsif (($j->{success} ? 1 : 0) != $want_success) {
        push @p, "success is " . ($j->{success} ? 'true' : 'false');
    }
    push @p, "timestamp missing or malformed"
        unless defined $j->{timestamp} && !ref $j->{timestamp}
            && $j->{timestamp} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
    my @keys = sort keys %$j;
    my @want_keys = sort('success', 'timestamp', $want_success ? 'data' : 'error');
    push @p, "envelope members are @keys, want @want_keys" if "@keys" ne "@want_keys";
    if ($want_success) {
        push @p, "data is not an object" unless ref $j->{data} eq 'HASH';
    } else {
        my $e = $j->{error};
        if (ref $e ne 'HASH') {
            push @p, "error is not an object";
        } else {
            push @p, "error.code is " . ($e->{code} // 'undef') . ", want $code"
                if defined $code && (!defined $e->{code} || $e->{code} ne $code);
            my @extra = grep { !/^(code|message|details)\z/ } sort keys %$e;
            push @p, "error has members @extra" if @extra;
            if (!defined $e->{message} || ref $e->{message} || !length $e->{message}) {
                push @p, "error.message empty";
            } else {
                my $want = $message;
                my $d = ref $e->{details} eq 'ARRAY' ? $e->{details} : [];
                $want //= first_violation_message($d->[0])
                    if defined $code && $code eq 'VALIDATION_ERROR' && ref $d->[0] eq 'HASH';
                $want //= $MESSAGE{$code} if defined $code;
                push @p, "error.message is '$e->{message}', want "
                        . (ref $want ? "$want" : "'$want'")
                    if defined $want && !_same_text($e->{message}, $want);
            }
            if (exists $e->{details}) {
                if (ref $e->{details} ne 'ARRAY') {
                    push @p, "error.details is not an array";
                } elsif (!@{ $e->{details} }) {
                    push @p, "error.details is an empty array (omitted when there is none)";
                }
            }
        }
    }
    return @p;
}

sub _response_diag {
    my ($res) = @_;
    return "response: $res->{status} "
        . join(', ', map { "$_: " . (ref $res->{headers}{$_} ? join('|', @{$res->{headers}{$_}}) : $res->{headers}{$_}) } sort keys %{ $res->{headers} })
        . "\n" . substr($res->{body} // '', 0, 2000)
        . ($res->{error} ? "\nerror: " . substr($res->{error}, 0, 2000) : '');
}

# envelope_ok($res, $status, $code, $name): the envelope, with that status
# and (for an error) that code and the code's message where it has one
# (%MESSAGE; a VALIDATION_ERROR with details: its first violation).
# Callable as a method too.
sub envelope_ok {
    shift if ref $_[0] && eval { $_[0]->isa(__PACKAGE__) };
    my ($res, $status, $code, $name) = @_;
    $name //= "$status" . (defined $code ? " $code" : '') . " envelope";
    my @p = _envelope_problems($res, $status, $code);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::ok(!@p, $name) or Test::More::diag(join("\n", @p) . "\n" . _response_diag($res));
    return !@p;
}

# error_ok($res, $status, $code, $message, $name): an error envelope with
# exactly that status, code and message (a string or a qr//; undef: the
# code's own, as envelope_ok). Callable as a method too.
sub error_ok {
    shift if ref $_[0] && eval { $_[0]->isa(__PACKAGE__) };
    my ($res, $status, $code, $message, $name) = @_;
    croak 'error_ok needs a code' unless defined $code;
    $name //= "$status $code envelope";
    my @p = _envelope_problems($res, $status, $code, $message);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::ok(!@p, $name) or Test::More::diag(join("\n", @p) . "\n" . _response_diag($res));
    return !@p;
}

# the details of an error response (a list of hashes)
sub details_of {
    my ($res) = @_;
    my $d = eval { $res->{json}{error}{details} };
    return ref $d eq 'ARRAY' ? @$d : ();
}

sub _fmt_detail {
    my ($d) = @_;
    return ref $d eq 'HASH'
        ? json_encode({ map { $_ => $d->{$_} } grep { defined $d->{$_} } keys %$d })
        : json_encode([$d]);
}

# What is wrong with the details of an error against @$want: each element
# a field name, or [field => message] (message a string or qr//). Exactly
# those details, no other; order-insensitive unless ordered => 1.
sub details_problems {
    my ($details, $want, %o) = @_;
    my @got = ref $details eq 'ARRAY' ? @$details : ();
    my @p;
    for my $i (0 .. $#got) {
        my $g = $got[$i];
        push @p, "detail $i is not {field, message} with a non-empty message: " . _fmt_detail($g)
            unless ref $g eq 'HASH' && defined $g->{field} && !ref $g->{field}
                && defined $g->{message} && !ref $g->{message} && length $g->{message}
                && keys %$g == 2;
    }
    my @w = map { ref $_ ? { field => $_->[0], message => $_->[1] } : { field => $_ } } @$want;
    my $match = sub {
        my ($g, $x) = @_;
        return ref $g eq 'HASH' && defined $g->{field} && $g->{field} eq $x->{field}
            && (!defined $x->{message} || _same_text($g->{message}, $x->{message}));
    };
    my $show = sub { my $x = shift; defined $x->{message} ? "$x->{field}: $x->{message}" : $x->{field} };
    if ($o{ordered}) {
        my $n = @w > @got ? @w : @got;
        for my $i (0 .. $n - 1) {
            if ($i > $#w) { push @p, "extra detail $i: " . _fmt_detail($got[$i]) }
            elsif ($i > $#got) { push @p, "missing detail $i: " . $show->($w[$i]) }
            elsif (!$match->($got[$i], $w[$i])) {
                push @p, "detail $i is " . _fmt_detail($got[$i]) . ", want " . $show->($w[$i]);
            }
        }
    } else {
        my @left = @got;
        my @missing;
        # the wants with a message first: they are the more specific
        for my $x (sort { (defined $b->{message} ? 1 : 0) <=> (defined $a->{message} ? 1 : 0) } @w) {
            my ($i) = grep { $match->($left[$_], $x) } 0 .. $#left;
            if (defined $i) { splice @left, $i, 1 } else { push @missing, $show->($x) }
        }
        push @p, 'missing: ' . join('; ', @missing) if @missing;
        push @p, 'not expected: ' . join('; ', map { _fmt_detail($_) } @left) if @left;
    }
    return @p;
}

# fields_ok($res, \@want, $name, %o): error.details holds exactly @$want
# (field names or [field => message]), see details_problems. An empty
# @$want: no details at all.
sub fields_ok {
    my ($res, $want, $name, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $e = eval { $res->{json}{error} };
    my @p = details_problems(ref $e eq 'HASH' ? $e->{details} : undef, $want, %o);
    my $label = @$want ? join(', ', map { ref $_ ? $_->[0] : $_ } @$want) : 'nothing';
    Test::More::ok(!@p, "$name: details are exactly $label")
        or Test::More::diag(join("\n", @p) . "\ndetails: "
                            . json_encode(ref $e eq 'HASH' ? $e->{details} // 'none' : 'none'));
    return !@p;
}

# A refused request: $do's response is the error envelope with $status and
# $code (and the code's message, as envelope_ok), its details are exactly
# @fields (field names or [field => message]; none: no details), and the
# whole Redis database is byte-for-byte unchanged. A hash ref among @fields
# holds options: message => the exact message (string or qr//), ordered => 1
# (the details in that order).
sub refused {
    my ($self, $name, $status, $code, $do, @fields) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my %o = map { %$_ } grep { ref $_ eq 'HASH' } @fields;
    @fields = grep { ref $_ ne 'HASH' } @fields;
    croak "refused: one code, not @$code" if ref $code;
    my $before = $self->snapshot;
    my $res = $do->();
    error_ok($res, $status, $code, $o{message}, $name);
    fields_ok($res, \@fields, $name, ordered => $o{ordered});
    Test::More::is_deeply($self->snapshot, $before, "$name: Redis unchanged");
    return $res;
}

sub detail_fields { map { ref $_ eq 'HASH' && defined $_->{field} ? $_->{field} : '<no field>' } details_of($_[0]) }

# ---------------------------------------------------------------- listing, seeding

# percent-encodes a string (its UTF-8 bytes) for a path segment or a query value
sub pct {
    my ($s) = @_;
    utf8::encode($s) if utf8::is_utf8($s);
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# Follows nextCursor from $path (e.g. '/api/v1/customers?limit=5', cursor
# appended percent-encoded) until it is null or a page is not a 200.
# Returns (\@items, \@responses). Options: field (default 'customers'),
# max_pages (default 2000), between => sub { ($response) } after each page.
sub follow_pages {
    my ($self, $path, $key, %o) = @_;
    my $field = $o{field} // 'customers';
    my $max = $o{max_pages} // 2000;
    my (@items, @pages, $cursor);
    while (1) {
        my $p = $path;
        $p .= ($p =~ /\?/ ? '&' : '?') . 'cursor=' . pct($cursor) if defined $cursor;
        my $r = $self->api('GET', $p, $key, undef, timeout => $o{timeout} // 10);
        push @pages, $r;
        last unless $r->{status} == 200 && ref $r->{json} eq 'HASH'
            && ref $r->{json}{data} eq 'HASH';
        push @items, @{ $r->{json}{data}{$field} || [] };
        $cursor = $r->{json}{data}{nextCursor};
        last unless defined $cursor;
        last if @pages >= $max;
        $o{between}->($r) if $o{between};
    }
    return (\@items, \@pages);
}

# Writes customers straight into Redis with the documented layout (s e n p m
# c u, email index, order, seq), many per EVAL: fast fixtures for listing and
# job tests. Only for fresh externalIds and emails (no collision checks).
# The email index is written by the module's own helpers (lib.lua and
# lib_customer.lua in front of the seeding script), so its buckets are the
# module's.
# @items: { externalId, email, name, phone?, metadata? (ref or JSON text) }
sub seed_customers {
    my ($self, $app, $items, %o) = @_;
    my $now = $o{now} // int time;
    my $lua = join '', map { _slurp(File::Spec->catfile(repo_root(), 'redis', $_))
                                 || die "redis/$_: cannot be read" } qw(lib.lua lib_customer.lua);
    $lua .= <<'LUA';
-- KEYS[1]: the app's seq, so that a cluster runs it on the app's slot
local pfx, now = ARGV[1], ARGV[2]
local ix = sd.emails(pfx .. 'emails')
for i = 3, #ARGV, 5 do
    local ext, email, name, phone, meta = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]
    local s = redis.call('INCR', KEYS[1])
    local h = {'s', s, 'e', email, 'n', name, 'c', now, 'u', now}
    if phone ~= '' then h[#h+1] = 'p'; h[#h+1] = phone end
    if meta ~= '' then h[#h+1] = 'm'; h[#h+1] = meta end
    redis.call('HSET', pfx .. 'c:' .. ext, unpack(h))
    redis.call('HSET', pfx .. 'order:' .. math.floor(s / 128), s, ext)
    sd.email_grow(ix, redis.call('INCR', pfx .. 'order:n'))
    sd.email_set(ix, string.lower(email), ext)
end
return 1
LUA
    my @all = @$items;
    while (my @part = splice @all, 0, 500) {
        my @args;
        for my $c (@part) {
            my $m = $c->{metadata};
            $m = json_encode($m) if ref $m;
            push @args, map { my $v = $_ // ''; utf8::encode($v) if utf8::is_utf8($v); $v }
                $c->{externalId}, $c->{email}, $c->{name}, $c->{phone}, $m;
        }
        $self->redis->eval($lua, 1, "sd:{$app}:seq", "sd:{$app}:", $now, @args);
    }
    return scalar @$items;
}

# The email index (sd:{app}:emails:<bucket> hashes, see README): lowercase
# email -> externalId
sub email_index {
    my ($self, $app) = @_;
    require SupportDesk::Invariants;
    return { SupportDesk::Invariants::email_entries($self->redis, $app) };
}

# the externalId the email index holds for a lowercase email, undef if none
sub email_owner {
    my ($self, $app, $lower) = @_;
    return $self->email_index($app)->{$lower};
}

# the key of the bucket that holds (or would hold) a lowercase email
sub email_bucket_key {
    my ($self, $app, $lower) = @_;
    require SupportDesk::Invariants;
    my $n = $self->redis->get("sd:{$app}:emails:n");
    return "sd:{$app}:emails:"
        . SupportDesk::Invariants::email_bucket(defined $n ? abs($n) : 1, $lower);
}

# The creation order index (sd:{app}:order:<bucket> hashes, see README)
sub order_of {
    my ($self, $app) = @_;
    require SupportDesk::Invariants;
    return SupportDesk::Invariants::order_list($self->redis, $app);
}

# the s under which the order index holds $ext, undef when it does not
sub order_s {
    my ($self, $app, $ext) = @_;
    require SupportDesk::Invariants;
    my %o = SupportDesk::Invariants::order_entries($self->redis, $app);
    return $o{$ext};
}

sub customer_count {
    my ($self, $app) = @_;
    return $self->redis->get("sd:{$app}:order:n") // 0;
}

# Every customer hash of an app in one EVAL: (\%by_externalId, \@externalIds
# in creation order)
sub customers_of {
    my ($self, $app) = @_;
    my $lua = <<'LUA';
local out = {}
local max = tonumber(redis.call('GET', ARGV[1] .. 'seq') or '0')
for s = 1, max do
    local x = redis.call('HGET', KEYS[1] .. ':' .. math.floor(s / 128), s)
    if x then
        out[#out+1] = x
        out[#out+1] = redis.call('HGETALL', ARGV[1] .. 'c:' .. x)
    end
end
return out
LUA
    my $flat = $self->redis->eval($lua, 1, "sd:{$app}:order", "sd:{$app}:");
    my (%by, @order);
    for (my $i = 0; $i < @$flat; $i += 2) {
        push @order, $flat->[$i];
        $by{ $flat->[$i] } = { @{ $flat->[$i + 1] || [] } };
    }
    return (\%by, \@order);
}

# ---------------------------------------------------------------- cleanup

sub _children_of {
    my ($master) = @_;
    my @w;
    opendir my $d, '/proc' or return;
    for my $p (grep { /^\d+$/ } readdir $d) {
        my $st = _slurp("/proc/$p/stat");
        push @w, $p if $st =~ /^\d+ \(.*\) \S+ (\d+)/s && $1 == $master;
    }
    return @w;
}

# TERM nginx; if it does not exit, KILL the master and its workers
sub _kill_nginx {
    my ($pid) = @_;
    my @w = _children_of($pid);
    kill 'TERM', $pid;
    my $end = time + ($ENV{SD_STOP_TIMEOUT} || 5);
    while (time < $end) {
        my $r = waitpid($pid, WNOHANG);
        last if $r == $pid || $r == -1;
        sleep 0.02;
    }
    kill 'KILL', $pid, @w, _children_of($pid);
    waitpid($pid, 0);
    delete $ALL_PIDS{$pid};
}

# The TCP connections the nginx processes (master, workers, helpers) hold
# to 127.0.0.1: [ { pid, fd, port (the peer's) } ], by /proc/<pid>/fd
# against /proc/net/tcp and tcp6. $master: nginx's pid (default: this
# environment's).
sub nginx_tcp_peers {
    my ($self, $master) = @_;
    $master //= $self->{nginx_pid} or return ();
    my %peer;    # socket inode -> the peer's port
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        for my $l (split /\n/, _slurp($f)) {
            my @f = split ' ', $l;
            # established, to 127.0.0.1 (0100007F, or ::ffff:127.0.0.1)
            next unless @f > 9 && $f[3] eq '01' && $f[2] =~ /0100007F:([0-9A-F]{4})\z/;
            $peer{ $f[9] } = hex $1;
        }
    }
    my @out;
    my @pids = _single_process() ? ($master) : ($master, _children_of($master));
    for my $pid (@pids) {
        opendir my $d, "/proc/$pid/fd" or next;
        for my $fd (readdir $d) {
            my $t = readlink "/proc/$pid/fd/$fd" // next;
            push @out, { pid => $pid, fd => $fd, port => $peer{$1} }
                if $t =~ /^socket:\[(\d+)\]\z/ && $peer{$1};
        }
    }
    return @out;
}

# TLS mode: the connections nginx holds to a plaintext Redis port of this
# environment, as lines for the log check (the module must never use the
# port the harness keeps for its own clients)
sub nginx_plaintext_connections {
    my ($self, $master) = @_;
    my %plain = map { $_ => 1 } $self->plaintext_redis_ports;
    return map { "nginx process $_->{pid} holds a plaintext connection to Redis 127.0.0.1:$_->{port} "
                 . "(fd $_->{fd}): in TLS mode every module connection must be TLS" }
        grep { $plain{ $_->{port} } } $self->nginx_tcp_peers($master);
}

# before nginx is stopped: what nginx_plaintext_connections finds fails the
# log check
sub _tls_socket_check {
    my ($self, $master) = @_;
    return unless tls_mode() && $master;
    push @{ $self->{tls_problems} }, $self->nginx_plaintext_connections($master);
}

# Stops the environment's servers, then checks its nginx logs (once).
sub cleanup {
    my ($self) = @_;
    local ($?, $!, $@);
    return unless $self->{owner} && $$ == $self->{owner};
    if (my $pid = delete $self->{nginx_pid}) { $self->_tls_socket_check($pid); _kill_nginx($pid) }
    if (my $pid = delete $self->{redis_pid}) {
        kill 'CONT', $pid;
        $self->_kill_wait($pid, 'KILL', 5);
    }
    $self->_release_cluster;
    delete $LIVE{ refaddr $self };
    $self->_log_check unless $self->{log_checked}++;
}

sub DESTROY { $_[0]->cleanup }

# ---------------------------------------------------------------- log check

# what nginx-tests (Test::Nginx) fail a test file on, plus the sanitizers'
# reports (t/quality.mk runs the suite under ASan/UBSan and valgrind)
our $LOG_BAD = do {
    my $any = join '|', map { quotemeta } '[alert]', '[crit]', '[emerg]', 'exited on signal',
        'AddressSanitizer', 'LeakSanitizer', 'UndefinedBehaviorSanitizer', 'runtime error:';
    qr/$any/;
};

# $env->allow_log(qr/.../, %o): a line of the logs that matches $LOG_BAD
# and this pattern is expected, because the test provokes it. Options:
#   file  => qr/.../  only in log files whose name matches (error.log,
#                     nginx.out, t<n>.err and t<n>.out of nginx_t)
#   maybe => 1        the line may not appear (timing); without it an
#                     allowance that matched no line fails the check too,
#                     so that no allowance outlives what the test provokes
sub allow_log {
    my ($self, $re, %o) = @_;
    croak 'allow_log takes a qr//' unless ref $re eq 'Regexp';
    my ($file, $line) = (caller)[1, 2];
    push @{ $self->{allow} }, { re => $re, file => $o{file}, maybe => $o{maybe},
                                at => "$file line $line", used => 0 };
    return $self;
}

# the nginx logs this environment wrote: error.log (all starts, reloads and
# restarts append to it), nginx.out (nginx's own stdout/stderr), t<n>.err
# and t<n>.out (each nginx -t), any other *.log or *.err nginx wrote in %TMP%
sub log_files {
    my ($self) = @_;
    opendir my $d, $self->{tmp} or return;
    my @f = sort grep { /^(?:error.*\.log|nginx\.out|t\d+\.(?:err|out)|.*\.err)\z/
                        && -f "$self->{tmp}/$_" } readdir $d;
    return map { "$self->{tmp}/$_" } @f;
}

# lines that fail the log check (not allowed), "file:line: text"
sub log_problems {
    my ($self) = @_;
    my @bad;
    $_->{used} = 0 for @{ $self->{allow} };
    for my $path ($self->log_files) {
        (my $base = $path) =~ s{.*/}{};
        open my $fh, '<', $path or next;
        while (my $l = <$fh>) {
            next unless $l =~ $LOG_BAD;
            $l =~ s/\r?\n\z//;
            my ($a) = grep { $l =~ $_->{re} && (!$_->{file} || $base =~ $_->{file}) }
                      @{ $self->{allow} };
            if ($a) { $a->{used}++; next }
            push @bad, "$base:$.: $l";
        }
        close $fh;
    }
    for my $a (grep { !$_->{used} && !$_->{maybe} } @{ $self->{allow} }) {
        push @bad, "allow_log($a->{re}) at $a->{at} matched no line: the test does not provoke it (any more)";
    }
    push @bad, @{ $self->{tls_problems} || [] };
    return @bad;
}

sub _log_check {
    my ($self) = @_;
    my @bad = $self->log_problems;
    my $name = "nginx logs of the environment created at $self->{created_at}: "
        . 'no [alert], [crit], [emerg], crash or sanitizer report'
        . (tls_mode() ? '; no nginx connection to a plaintext Redis port' : '');
    my $diag = join "\n", "in $self->{tmp}" . ($ENV{SD_KEEP} ? '' : ' (SD_KEEP=1 keeps it)') . ':',
        (@bad > 40 ? (@bad[0 .. 39], '... ' . (@bad - 40) . ' more') : @bad);
    my $hub = Test2::API::test2_stack()->root;
    # a file with a fixed plan (plan tests => N) counts its tests itself:
    # there the check is a test only when it fails
    my $plan = $hub ? $hub->plan : undef;
    my $fixed = defined $plan && $plan =~ /^\d+\z/;
    if ($hub && !$hub->ended) {
        if (@bad || !$fixed) { Test::More::ok(!@bad, $name) or Test::More::diag($diag) }
    } elsif (@bad) {
        # the test has ended (plan sent): say it, and fail the exit status
        print STDERR "# not ok (after the end of the test): $name\n",
            map { "# $_\n" } split /\n/, $diag;
        $LATE_FAILURE = 1;
    }
}

# every environment still alive: stopped and checked
sub _cleanup_all {
    my @live = sort { $a->{n} <=> $b->{n} } grep { defined } values %LIVE;
    $_->cleanup for @live;
}

# done_testing (or the end of a test without it): the hub runs its
# follow-ups before it counts the tests and prints the plan, so the log
# checks of the environments still alive are tests of the plan
Test2::API::test2_stack()->top->follow_up(sub { _cleanup_all() if $$ == $OWNER });

# a test killed by a signal (Ctrl-C, prove piped into head, timeout) still
# stops its servers: turn the signal into exit, which runs END
for my $sig (qw(INT TERM HUP PIPE)) {
    next if defined $SIG{$sig} && $SIG{$sig} ne 'DEFAULT' && $SIG{$sig} ne '';
    $SIG{$sig} = sub {
        return unless $$ == $OWNER;
        $SIG{$sig} = 'DEFAULT';
        print STDERR "# SupportDesk::Test: caught SIG$sig, stopping servers\n" unless $sig eq 'PIPE';
        exit 128 + 1;
    };
}

END {
    my $exit = $?;
    {
        local ($?, $!, $@);
        _cleanup_all() if $$ == $OWNER;
    }
    $? = $exit || 255 if $LATE_FAILURE && $$ == $OWNER;
    local ($?, $!, $@);
    if ($$ == $OWNER) {
        for my $pid (grep { $ALL_PIDS{$_} =~ /nginx/ } keys %ALL_PIDS) {
            _kill_nginx($pid);
        }
        for my $pid (keys %ALL_PIDS) {
            kill 'CONT', $pid;
            kill 'KILL', $pid;
            waitpid($pid, 0);
        }
    }
}

1;
