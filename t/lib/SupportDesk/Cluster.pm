package SupportDesk::Cluster;

# A private Redis Cluster for the tests: 3 masters and 3 replicas (by
# default) of the real redis-server on free loopback ports, in a temp dir,
# created with `redis-cli --cluster create`, stopped and removed at the end
# (also when the test dies or is killed by INT, TERM, HUP or PIPE).
#
#   my $c = SupportDesk::Cluster->new(
#       masters    => 3,             # default 3
#       replicas   => 1,             # per master, default 1
#       redis_args => [...],         # extra redis-server arguments, every node
#       password   => 'pw',          # requirepass and masterauth of every
#                                    # node, the password of the clients
#                                    # (default: a --requirepass of redis_args)
#       tls        => 1,             # every node also has a TLS port, the
#                                    # bus and the replication are TLS
#                                    # (SupportDesk::TLS, below)
#   );
#   $c->seeds;                       # "127.0.0.1:<port>" of every master
#   $c->tls_seeds;                   # the same masters' TLS addresses
#   my $r = $c->client;              # SupportDesk::Cluster::Client (below)
#   $c->master_of_key('sd:{acme}:seq');
#   my $new = $c->kill_master($addr); # SIGKILL, returns the promoted replica
#   $c->move_slot($slot, $to_addr);   # SETSLOT IMPORTING/MIGRATING, MIGRATE,
#                                     # SETSLOT NODE
#   $c->pause_node($addr); $c->resume_node($addr);
#
# Every node runs `redis-server --port P --cluster-port B --bind 127.0.0.1
# --cluster-enabled yes --cluster-config-file <dir>/nodes-P.conf
# --cluster-node-timeout 2000 --appendonly no --save '' --dir <dir>
# --dbfilename dump-P.rdb --daemonize no --protected-mode no`, plus
# redis_args (what the single-Redis harness, SupportDesk::Test, runs one
# server with).  The bus port is chosen free too (--cluster-port): P + 10000
# may be taken or above 65535.  new() returns once every node reports
# cluster_state:ok, all of them agree on the owner of every slot and every
# replica's link to its master is up.
#
# tls => 1 (the harness's TLS mode, SD_TLS=1): every node gets a TLS port
# too (SupportDesk::TLS::redis_args: the test PKI's certificate, the CA,
# tls-replication yes) and --tls-cluster yes: the bus and the replication
# are TLS. The plaintext port stays, for the harness's own clients (Redis.pm
# has no TLS): Redis 7.0 answers CLUSTER SLOTS, CLUSTER NODES, MOVED and ASK
# with the plaintext ports to a plaintext client and the TLS ports to a TLS
# client (CLUSTER SHARDS gives both, "port" and "tls-port"), so this
# module's client sees the plaintext cluster and nginx the TLS one.
# Addresses stay the plaintext ones everywhere here; tls_addr($addr) is a
# node's TLS address, tls_seeds the masters'.
#
# Environment: SD_REDIS_SERVER (default redis-server), SD_REDIS_CLI (default
# redis-cli), SD_KEEP=1 keeps the directory (nodes-*.conf, redis-*.log,
# create.log) and prints where it is.
#
# SupportDesk::Cluster::Client is a client for the harness's own assertions
# and fixtures, with the methods of a Redis.pm client: each command with a
# key goes to the master of the key's slot (CRC16 of the key, or of its
# {hash tag}, mod 16384), MOVED and ASK are followed, commands without a key
# go to every master (see the client's comment for which and how their
# answers are merged).
#
# Only core Perl plus Redis.pm (libredis-perl).

use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken refaddr);
use Time::HiRes qw(time sleep);

use Redis;
use SupportDesk::Ports;
use SupportDesk::TLS;

our $NODE_TIMEOUT = 2000;

# the CLIENT SETNAME of the harness's own connections: in TLS mode a test
# tells them from the module's (t/45-tls-mode.t)
our $CLIENT_NAME = 'sd-harness';

my %PIDS;            # every redis-server started, killed at END in the owner
my $OWNER = $$;
my %LIVE;            # clusters not stopped yet (weak references)

sub redis_server_bin { $ENV{SD_REDIS_SERVER} || 'redis-server' }
sub redis_cli_bin    { $ENV{SD_REDIS_CLI} || 'redis-cli' }

# ---------------------------------------------------------------- slots

# CRC16-XMODEM (polynomial 0x1021, initial 0), the Redis Cluster key hash
my @CRC16;
for my $i (0 .. 255) {
    my $c = $i << 8;
    $c = $c & 0x8000 ? ($c << 1) ^ 0x1021 : $c << 1 for 1 .. 8;
    push @CRC16, $c & 0xffff;
}

sub crc16 {
    my ($bytes) = @_;
    my $crc = 0;
    $crc = (($crc << 8) & 0xff00) ^ $CRC16[(($crc >> 8) ^ $_) & 0xff] for unpack 'C*', $bytes;
    return $crc;
}

# The slot of a key, as Redis computes it: the bytes between the first "{"
# and the first "}" after it when that is not empty, else the whole key.
# A key is the bytes Redis.pm sends (a character string is sent in Latin-1).
sub keyslot {
    my ($key) = @_;
    croak 'keyslot: no key' unless defined $key;
    utf8::downgrade($key, 1) or croak "keyslot: the key is not an octet string: $key";
    my $s = index($key, '{');
    if ($s >= 0) {
        my $e = index($key, '}', $s + 1);
        $key = substr($key, $s + 1, $e - $s - 1) if $e > $s + 1;
    }
    return crc16($key) & 16383;
}

# ---------------------------------------------------------------- processes

sub _free_ports { return SupportDesk::Ports::free_ports(@_) }

sub _spawn {
    my ($out, @cmd) = @_;
    my $pid = fork;
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $out or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    $PIDS{$pid} = $cmd[0];
    return $pid;
}

sub _alive {
    my ($pid) = @_;
    return 0 unless $pid;
    my $r = waitpid($pid, WNOHANG);
    if ($r == $pid || $r == -1) { delete $PIDS{$pid}; return 0 }
    return 1;
}

sub _kill_wait {
    my ($pid, $sig, $timeout) = @_;
    return 1 unless $pid;
    kill 'CONT', $pid;
    kill $sig, $pid;
    my $end = time + ($timeout // 5);
    while (time < $end) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid || $r == -1) { delete $PIDS{$pid}; return 1 }
        sleep 0.01;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    delete $PIDS{$pid};
    return 0;
}

sub _slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    my $c = <$fh>;
    return $c // '';
}

sub _wait_until {
    my ($cb, $timeout, $step) = @_;
    my $end = time + ($timeout // 10);
    while (1) {
        my $r = $cb->();
        return $r if $r;
        return 0 if time > $end;
        sleep($step // 0.05);
    }
}

# ---------------------------------------------------------------- the cluster

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        masters    => 3,
        replicas   => 1,
        redis_args => [],
        %o,
        owner => $$,
        nodes => {},     # port -> { port, bus, pid, addr }
        dirty => 0,      # a fault was injected: not reusable (SupportDesk::Test)
    }, $class;
    my @ra = @{ $self->{redis_args} };
    for my $i (0 .. $#ra - 1) {
        $self->{password} //= $ra[$i + 1] if $ra[$i] eq '--requirepass';
    }
    my $keep = $ENV{SD_KEEP} ? 1 : 0;
    $self->{dir} = tempdir('sd-cluster-XXXXXX', TMPDIR => 1, CLEANUP => !$keep);
    chmod 0755, $self->{dir};
    print STDERR "# SD_KEEP: cluster dir $self->{dir}\n" if $keep;
    $LIVE{ refaddr $self } = $self;
    weaken $LIVE{ refaddr $self };

    my $n = $self->{masters} * (1 + $self->{replicas});
    croak 'a cluster needs at least 3 masters' if $self->{masters} < 3;
    my $per = $self->{tls} ? 3 : 2;
    my @ports = _free_ports($per * $n);
    my $t0 = time;
    for my $i (0 .. $n - 1) {
        my $node = { port => $ports[$per * $i], bus => $ports[$per * $i + 1] };
        $node->{tls_port} = $ports[$per * $i + 2] if $self->{tls};
        $node->{addr} = "127.0.0.1:$node->{port}";
        $self->{nodes}{ $node->{port} } = $node;
        push @{ $self->{order} }, $node->{port};
        $self->start_node($node->{addr}, wait => 0);
    }
    $self->_wait_ping($_) for values %{ $self->{nodes} };
    $self->{times}{spawned} = time - $t0;
    $self->_create;
    $self->{times}{created} = time - $t0;
    $self->wait_stable(timeout => 30, replicas_synced => 1,
                       replicas => $self->{masters} * $self->{replicas})
        or croak "the cluster did not become stable:\n" . $self->describe;
    $self->{started_in} = time - $t0;
    $self->{initial_map} = $self->_map_signature;
    return $self;
}

sub dir        { $_[0]{dir} }
sub started_in { $_[0]{started_in} }
sub tls        { $_[0]{tls} ? 1 : 0 }
sub password   { $_[0]{password} }
sub dirty      { $_[0]{dirty} }
# how long each step of new() took, from its start: { spawned, created }
sub timings    { $_[0]{times} }

# the redis-server command line of a node
sub _node_args {
    my ($self, $node) = @_;
    my $d = $self->{dir};
    my @a = (redis_server_bin(),
        '--port', $node->{port}, '--cluster-port', $node->{bus}, '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes', '--cluster-config-file', "$d/nodes-$node->{port}.conf",
        '--cluster-node-timeout', $NODE_TIMEOUT,
        '--save', '', '--appendonly', 'no', '--dir', $d, '--dbfilename', "dump-$node->{port}.rdb",
        '--daemonize', 'no', '--protected-mode', 'no', '--logfile', '',
        # a replica's first sync starts at once, not after the 5 s a master
        # waits for more replicas to serve them with one transfer
        '--repl-diskless-sync-delay', '0');
    # the replicas authenticate to their master as the default user
    push @a, '--requirepass', $self->{password}, '--masterauth', $self->{password}
        if defined $self->{password};
    push @a, SupportDesk::TLS::redis_args($node->{tls_port}), '--tls-cluster', 'yes'
        if $self->{tls};
    push @a, @{ $self->{redis_args} };
    return @a;
}

# the TLS address of a node (given by its plaintext one), croaks without TLS
sub tls_addr {
    my ($self, $addr) = @_;
    croak 'tls_addr: the cluster has no TLS ports (tls => 1)' unless $self->{tls};
    return '127.0.0.1:' . $self->_node($addr)->{tls_port};
}

# the plaintext and the TLS port of every node started
sub plain_ports { my $s = shift; my @p = @{ $s->{order} }; return @p }
sub tls_ports {
    my $s = shift;
    return () unless $s->{tls};
    my @p = map { $s->{nodes}{$_}{tls_port} } @{ $s->{order} };
    return @p;
}

# (Re)starts a node of the cluster: a node killed earlier comes back with
# its nodes-<port>.conf (it rejoins, as a replica of whoever took its slots)
sub start_node {
    my ($self, $addr, %o) = @_;
    my $node = $self->_node($addr);
    croak "node $addr is running" if _alive($node->{pid});
    $node->{pid} = _spawn("$self->{dir}/redis-$node->{port}.log", $self->_node_args($node));
    $self->_wait_ping($node) unless defined $o{wait} && !$o{wait};
    delete $self->{conn}{$addr};
    return $addr;
}

sub _node {
    my ($self, $addr) = @_;
    my ($port) = ($addr // '') =~ /(\d+)\z/ or croak "not a node address: " . ($addr // 'undef');
    return $self->{nodes}{$port} || croak "no node $addr in this cluster";
}

sub _wait_ping {
    my ($self, $node) = @_;
    my $ok = _wait_until(sub {
        return -1 unless _alive($node->{pid});
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $node->{port},
            Proto => 'tcp', Timeout => 1) or return 0;
        print $s "PING\r\n";
        my $l = '';
        my $rin = '';
        vec($rin, fileno($s), 1) = 1;
        if (select(my $r = $rin, undef, undef, 1) > 0) { sysread($s, $l, 100) }
        close $s;
        return $l =~ /^[+-]/ ? 1 : 0;
    }, 10, 0.02);
    croak "redis-server $node->{addr} did not start:\n" . _slurp("$self->{dir}/redis-$node->{port}.log")
        if !$ok || $ok == -1;
}

sub _auth_args {
    my ($self) = @_;
    return () unless defined $self->{password};
    return ('-a', $self->{password}, '--no-auth-warning');
}

sub _create {
    my ($self) = @_;
    my $log = "$self->{dir}/create.log";
    my @cmd = (redis_cli_bin(), $self->_auth_args, '--cluster', 'create',
        (map { $self->{nodes}{$_}{addr} } @{ $self->{order} }),
        '--cluster-replicas', $self->{replicas}, '--cluster-yes');
    my $pid = _spawn($log, @cmd);
    my $done = _wait_until(sub { !_alive($pid) }, 60, 0.02);
    if (!$done) { _kill_wait($pid, 'KILL'); croak "redis-cli --cluster create hung:\n" . _slurp($log) }
    croak "redis-cli --cluster create failed:\n" . _slurp($log)
        unless _slurp($log) =~ /\[OK\] All 16384 slots covered/;
}

# a plain Redis.pm client of one node (cached; reconnected when it broke)
sub node_client {
    my ($self, $addr, %o) = @_;
    my $c = $self->{conn}{$addr};
    return $c if $c && $c->{sock} && !$o{fresh};
    $c = Redis->new(server => $addr, reconnect => 0, cnx_timeout => 1,
        read_timeout => $o{read_timeout} // 5, write_timeout => 5, name => $CLIENT_NAME,
        (defined $self->{password} ? (password => $self->{password}) : ()));
    return $self->{conn}{$addr} = $c;
}

sub _cmd {
    my ($self, $addr, $method, @args) = @_;
    my $want = wantarray;
    my @r = eval { my $c = $self->node_client($addr); $want ? $c->$method(@args) : scalar $c->$method(@args) };
    if ($@) { delete $self->{conn}{$addr}; die $@ }
    return $want ? @r : $r[0];
}

# the nodes that run (not killed, not paused), in creation order
sub _running {
    my ($self) = @_;
    return map { $self->{nodes}{$_} }
        grep { _alive($self->{nodes}{$_}{pid}) && !$self->{nodes}{$_}{paused} } @{ $self->{order} };
}

# CLUSTER NODES as one node sees it: [ { id, addr, flags => {..}, master_id,
# slots => [[from, to], ...], migrating => {slot => id}, importing => {...} } ]
sub cluster_nodes {
    my ($self, $addr) = @_;
    my @out;
    for my $l (split /\n/, $self->_cmd($addr, 'cluster', 'nodes')) {
        my ($id, $a, $flags, $master, undef, undef, undef, $link, @slots) = split ' ', $l;
        next unless defined $link;
        $a =~ s/[@,].*//;
        my %n = (id => $id, addr => $a, flags => { map { $_ => 1 } split /,/, $flags },
                 master_id => $master eq '-' ? undef : $master, link => $link);
        for my $s (@slots) {
            if ($s =~ /^\[(\d+)->-(\S+)\]$/)    { $n{migrating}{$1} = $2 }
            elsif ($s =~ /^\[(\d+)-<-(\S+)\]$/) { $n{importing}{$1} = $2 }
            elsif ($s =~ /^(\d+)-(\d+)$/)       { push @{ $n{slots} }, [$1, $2] }
            elsif ($s =~ /^(\d+)$/)             { push @{ $n{slots} }, [$1, $1] }
        }
        push @out, \%n;
    }
    return \@out;
}

# "from-to=addr ..." of CLUSTER SLOTS as $addr sees it (masters only)
sub _slots_signature {
    my ($self, $addr) = @_;
    my $slots = $self->_cmd($addr, 'cluster', 'slots');
    return join ' ', map { "$_->[0]-$_->[1]=$_->[2][0]:$_->[2][1]" }
        sort { $a->[0] <=> $b->[0] } @$slots;
}

sub _map_signature {
    my ($self) = @_;
    my ($n) = $self->_running or return '';
    return $self->_slots_signature($n->{addr});
}

# "addr role master-addr" of every node, as $addr sees them (failed nodes
# marked), sorted
sub _roles_signature {
    my ($self, $addr) = @_;
    my $list = $self->cluster_nodes($addr);
    my %addr_of = map { $_->{id} => $_->{addr} } @$list;
    return join ', ', sort map {
        my $f = $_->{flags};
        join ' ', $_->{addr}, ($f->{master} ? 'master' : $f->{slave} ? 'replica' : 'none'),
            ($_->{master_id} ? "of $addr_of{ $_->{master_id} }" : ()),
            ($f->{fail} || $f->{'fail?'} ? 'failed' : ());
    } @$list;
}

# Waits until every running node says cluster_state:ok, all of them give
# the same owner for every slot (all 16384 covered) and the same role to
# every node, and (replicas_synced) every replica's link to its master is
# up. Returns 1, or 0 after timeout.
sub wait_stable {
    my ($self, %o) = @_;
    my $last = '';
    my $ok = _wait_until(sub {
        my @n = $self->_running;
        my (%sig, %roles);
        for my $n (@n) {
            my $info = eval { $self->_cmd($n->{addr}, 'cluster', 'info') } // '';
            if ($info !~ /cluster_state:ok/ || $info !~ /cluster_slots_assigned:16384/) {
                $last = "$n->{addr}: " . join(' ', $info =~ /(cluster_state:\w+|cluster_slots_\w+:\d+)/g);
                return 0;
            }
            my $s = eval { $self->_slots_signature($n->{addr}) } // '';
            $sig{$s}++;
            $roles{ eval { $self->_roles_signature($n->{addr}) } // '' }++;
        }
        if (keys %sig != 1) { $last = 'the nodes disagree on the slots: ' . join(' | ', keys %sig); return 0 }
        if (keys %roles != 1) { $last = 'the nodes disagree on the roles: ' . join(' | ', keys %roles); return 0 }
        my ($roles) = keys %roles;
        my $want = $o{replicas} // 0;
        my $have = () = $roles =~ / replica of /g;
        if ($have < $want) { $last = "$have replicas, want $want: $roles"; return 0 }
        if ($o{replicas_synced}) {
            for my $n (@n) {
                my $r = eval { $self->_cmd($n->{addr}, 'info', 'replication') } || {};
                next unless ($r->{role} // '') eq 'slave';
                if (($r->{master_link_status} // '') ne 'up') {
                    $last = "replica $n->{addr}: master_link_status " . ($r->{master_link_status} // '?');
                    return 0;
                }
            }
        }
        return 1;
    }, $o{timeout} // 20, 0.05);
    $self->{last_unstable} = $last unless $ok;
    return $ok;
}

# the topology as the first running node sees it (for diagnostics)
sub describe {
    my ($self) = @_;
    my @n = $self->_running;
    my $t = ($self->{last_unstable} ? "last seen: $self->{last_unstable}\n" : '');
    $t .= $n[0] ? (eval { $self->_cmd($n[0]{addr}, 'cluster', 'nodes') } // "no answer: $@") : 'no node runs';
    $t .= "\nlogs in $self->{dir}" . ($ENV{SD_KEEP} ? '' : ' (SD_KEEP=1 keeps them)');
    return $t;
}

# the live masters and replicas, per CLUSTER NODES of a running node
sub _live_nodes {
    my ($self) = @_;
    for my $n ($self->_running) {
        my $list = eval { $self->cluster_nodes($n->{addr}) } or next;
        return grep { !$_->{flags}{fail} && !$_->{flags}{'fail?'} && !$_->{flags}{noaddr} } @$list;
    }
    croak 'no node of the cluster answers';
}

# (lists, sorted; in scalar context their length)
sub masters {
    my ($self) = @_;
    my @m = sort map { $_->{addr} } grep { $_->{flags}{master} && $_->{slots} } $self->_live_nodes;
    return @m;
}

sub replicas {
    my ($self) = @_;
    my @r = sort map { $_->{addr} } grep { $_->{flags}{slave} } $self->_live_nodes;
    return @r;
}

sub replicas_of {
    my ($self, $master) = @_;
    my @n = $self->_live_nodes;
    my ($m) = grep { $_->{addr} eq $master } @n or croak "no node $master";
    my @r = sort map { $_->{addr} } grep { ($_->{master_id} // '') eq $m->{id} } @n;
    return @r;
}

# every node started, whatever its state
sub all_nodes { my $s = shift; my @a = map { $s->{nodes}{$_}{addr} } @{ $s->{order} }; return @a }

# whether $addr holds $key itself (a node answers MOVED for the keys of
# slots it does not own; CLUSTER GETKEYSINSLOT lists what it has)
sub node_has_key {
    my ($self, $addr, $key) = @_;
    my $slot = keyslot($key);
    my $n = $self->_cmd($addr, 'cluster', 'countkeysinslot', $slot);
    my @k = $n ? $self->_cmd($addr, 'cluster', 'getkeysinslot', $slot, $n) : ();
    return scalar grep { $_ eq $key } @k;
}

# the seed list of supportdesk_redis_cluster: every master
sub seeds { $_[0]->masters }

# the same, the masters' TLS addresses (tls => 1)
sub tls_seeds { my $s = shift; my @a = map { $s->tls_addr($_) } $s->masters; return @a }

sub pid_of { $_[0]->_node($_[1])->{pid} }

# the master owning a slot, by CLUSTER SLOTS of a running node
sub master_of_slot {
    my ($self, $slot) = @_;
    for my $n ($self->_running) {
        my $slots = eval { $self->_cmd($n->{addr}, 'cluster', 'slots') } or next;
        for my $r (@$slots) {
            return "$r->[2][0]:$r->[2][1]" if $slot >= $r->[0] && $slot <= $r->[1];
        }
        return undef;
    }
    croak 'no node of the cluster answers';
}

sub master_of_key { $_[0]->master_of_slot(keyslot($_[1])) }

# SupportDesk::Cluster::Client over this cluster
sub client {
    my ($self, %o) = @_;
    return SupportDesk::Cluster::Client->new(seeds => [ $self->seeds ],
        password => $self->{password}, %o);
}

# ---------------------------------------------------------------- faults

# SIGKILL a master; unless wait => 0, wait (timeout, default 20 s) until one
# of its replicas is its slots' master and the cluster is stable again, and
# return that replica's address.
sub kill_master {
    my ($self, $addr, %o) = @_;
    my @reps = $self->replicas_of($addr);
    my %was = map { $_ => 1 } @reps;
    croak "$addr has no replica to promote" unless @reps || !($o{wait} // 1);
    $self->{dirty} = 1;
    $self->kill_node($addr);
    return undef if defined $o{wait} && !$o{wait};
    my $new;
    _wait_until(sub {
        my @m = eval { $self->masters };
        ($new) = grep { $was{$_} } @m;
        return $new && $self->wait_stable(timeout => 0);
    }, $o{timeout} // 20, 0.05)
        or croak "no replica of $addr was promoted:\n" . $self->describe;
    return $new;
}

sub kill_node {
    my ($self, $addr) = @_;
    my $node = $self->_node($addr);
    $self->{dirty} = 1;
    delete $self->{conn}{$addr};
    _kill_wait($node->{pid}, 'KILL');
    delete $node->{pid};
    delete $node->{paused};
}

sub pause_node {
    my ($self, $addr) = @_;
    my $node = $self->_node($addr);
    kill 'STOP', $node->{pid};
    $node->{paused} = 1;
}

sub resume_node {
    my ($self, $addr) = @_;
    my $node = $self->_node($addr);
    kill 'CONT', $node->{pid};
    $node->{paused} = 0;
}

sub pause_all  { my $s = shift; $s->pause_node($_)  for grep { _alive($s->_node($_)->{pid}) } $s->all_nodes }
sub resume_all { my $s = shift; $s->resume_node($_) for grep { _alive($s->_node($_)->{pid}) } $s->all_nodes }

sub _node_id {
    my ($self, $addr) = @_;
    my $id = $self->_cmd($addr, 'cluster', 'myid');
    return $id;
}

# The steps of a slot's move (Redis Cluster specification, "Live
# resharding"), for tests that act between them:
#   begin_migration($slot, $to)  target IMPORTING, then source MIGRATING
#   migrate_keys($slot, $n)      MIGRATE up to $n keys (all: undef); returns
#                                how many were moved
#   end_migration($slot)         SETSLOT NODE on the target, the source, then
#                                every other master; waits until all agree
# move_slot($slot, $to) does the three.
sub begin_migration {
    my ($self, $slot, $to) = @_;
    my $from = $self->master_of_slot($slot) // croak "slot $slot has no master";
    croak "slot $slot is already on $to" if $from eq $to;
    $self->{dirty} = 1;
    my ($fid, $tid) = map { $self->_node_id($_) } $from, $to;
    $self->_cmd($to, 'cluster', 'setslot', $slot, 'importing', $fid);
    $self->_cmd($from, 'cluster', 'setslot', $slot, 'migrating', $tid);
    $self->{migration}{$slot} = { from => $from, to => $to, to_id => $tid };
    return $from;
}

sub migrate_keys {
    my ($self, $slot, $max) = @_;
    my $m = $self->{migration}{$slot} or croak "slot $slot is not being migrated";
    # with tls-cluster yes a node MIGRATEs over TLS: to the TLS port
    my ($host, $port) = split /:/, $self->{tls} ? $self->tls_addr($m->{to}) : $m->{to};
    my @auth = defined $self->{password} ? ('AUTH', $self->{password}) : ();
    my $moved = 0;
    while (!defined $max || $moved < $max) {
        my $want = defined $max ? ($max - $moved < 100 ? $max - $moved : 100) : 100;
        my @keys = $self->_cmd($m->{from}, 'cluster', 'getkeysinslot', $slot, $want);
        last unless @keys;
        $self->_cmd($m->{from}, 'migrate', $host, $port, '', 0, 5000, @auth, 'KEYS', @keys);
        $moved += @keys;
    }
    return $moved;
}

sub end_migration {
    my ($self, $slot) = @_;
    my $m = delete $self->{migration}{$slot} or croak "slot $slot is not being migrated";
    $self->_cmd($m->{to}, 'cluster', 'setslot', $slot, 'node', $m->{to_id});
    $self->_cmd($m->{from}, 'cluster', 'setslot', $slot, 'node', $m->{to_id});
    for my $x ($self->masters) {
        next if $x eq $m->{to} || $x eq $m->{from};
        $self->_cmd($x, 'cluster', 'setslot', $slot, 'node', $m->{to_id});
    }
    _wait_until(sub { $self->wait_stable(timeout => 0)
                      && ($self->master_of_slot($slot) // '') eq $m->{to} }, 20)
        or croak "slot $slot did not settle on $m->{to}:\n" . $self->describe;
    return $m->{to};
}

sub move_slot {
    my ($self, $slot, $to) = @_;
    my $from = $self->begin_migration($slot, $to);
    my $n = $self->migrate_keys($slot);
    $self->end_migration($slot);
    return $n;
}

# ---------------------------------------------------------------- reuse

# Empties the cluster for another test environment: FLUSHALL on every
# master, SCRIPT FLUSH and CONFIG RESETSTAT on every node. Returns 0 (and
# does nothing) when it is not as it was created: a node killed, a slot
# moved, a node paused (then it is to be stopped, not reused).
sub reset {
    my ($self) = @_;
    return 0 if $self->{dirty};
    return 0 if grep { !_alive($self->{nodes}{$_}{pid}) || $self->{nodes}{$_}{paused} } @{ $self->{order} };
    my $ok = eval {
        for my $m ($self->masters) { $self->_cmd($m, 'flushall', 'sync') }
        for my $a ($self->all_nodes) {
            $self->_cmd($a, 'script', 'flush', 'sync');
            $self->_cmd($a, 'config', 'resetstat');
        }
        # the replicas have applied the FLUSHALL (a test reading a replica,
        # or promoting one, starts from nothing)
        _wait_until(sub {
            !grep { ($self->_cmd($_, 'dbsize') // 1) != 0 } $self->replicas
        }, 10) or die "replicas did not empty\n";
        $self->_map_signature eq $self->{initial_map} or die "slot map changed\n";
        1;
    };
    return $ok ? 1 : 0;
}

# ---------------------------------------------------------------- stop

sub stop {
    my ($self) = @_;
    return unless $self->{owner} && $$ == $self->{owner};
    delete $self->{conn};
    for my $n (values %{ $self->{nodes} }) {
        next unless $n->{pid};
        kill 'CONT', $n->{pid};
        kill 'KILL', $n->{pid};
    }
    for my $n (values %{ $self->{nodes} }) {
        my $pid = delete $n->{pid} or next;
        waitpid($pid, 0);
        delete $PIDS{$pid};
    }
    delete $LIVE{ refaddr $self };
}

sub DESTROY { local ($?, $!, $@); $_[0]->stop }

# a test killed by a signal still stops its servers: turn it into exit
# (SupportDesk::Test does the same; whoever is loaded first sets it)
for my $sig (qw(INT TERM HUP PIPE)) {
    next if defined $SIG{$sig} && $SIG{$sig} ne 'DEFAULT' && $SIG{$sig} ne '';
    $SIG{$sig} = sub {
        return unless $$ == $OWNER;
        $SIG{$sig} = 'DEFAULT';
        print STDERR "# SupportDesk::Cluster: caught SIG$sig, stopping servers\n" unless $sig eq 'PIPE';
        exit 128 + 1;
    };
}

END {
    local ($?, $!, $@);
    if ($$ == $OWNER) {
        $_->stop for grep { defined } values %LIVE;
        for my $pid (keys %PIDS) { kill 'CONT', $pid; kill 'KILL', $pid; waitpid($pid, 0) }
    }
}


# ================================================================ client

package SupportDesk::Cluster::Client;

# The harness's client of a cluster, with the methods of Redis.pm that the
# tests call on $env->redis ($r->hget(...), $r->$cmd(@args), the same return
# values in list and scalar context).
#
# A command with a key goes to the master of the key's slot (the slot map
# from CLUSTER SLOTS, refreshed on every MOVED and every lost connection).
# The key is the first argument, except: EVAL/EVALSHA/FCALL (their first
# key; a script must name at least one), OBJECT/MEMORY called with the
# subcommand as an argument (the second), XREAD/XREADGROUP (after STREAMS).
# DEL, UNLINK, EXISTS, TOUCH with keys of several slots are sent per slot and
# their counts added; MGET per slot, in the order asked.
#   MOVED <slot> <addr>: the slot's entry is patched, the map refreshed, the
#     command sent there (at most 16 redirects a command);
#   ASK <slot> <addr>: ASKING then the command on <addr>, map unchanged;
#   TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN, a connection refused or lost:
#     the map is refreshed and the command retried, with a backoff, for up
#     to retry_timeout (10 s by default: a replica's promotion fits).
#
# Commands without a key:
#   every master, answers merged: SCAN (one cursor over all masters: a
#     MATCH pattern whose hash tag is literal, e.g. 'sd:{acme}:*', scans only
#     its slot's master), KEYS and DBSIZE (all keys, the sum), INFO (below),
#     CLIENT LIST (the lines of all masters), PING (PONG when all answer);
#     FLUSHALL, FLUSHDB, SAVE, BGSAVE, CONFIG RESETSTAT, SCRIPT LOAD/FLUSH,
#     FUNCTION ... (the first master's answer);
#   every node, replicas too: CONFIG SET, ACL ... (a promoted replica must
#     have the same settings);
#   the first master: CONFIG GET, CLUSTER ..., TIME, ECHO, and any other;
#   refused (croak): SELECT of a database other than 0, MULTI/EXEC/WATCH,
#     SHUTDOWN, REPLICAOF/SLAVEOF, a script without keys.
#
# INFO: a hash as Redis.pm returns, of every master: numeric fields are the
# sum over the masters (so total_commands_processed, keyspace_hits,
# total_connections_received... count what the whole cluster did; gauges
# like uptime_in_seconds or used_memory summed are totals too, ratios and
# timestamps summed mean nothing: read those with info_per_master);
# cmdstat_<cmd> and errorstat_<err>: calls, usec, rejected_calls,
# failed_calls, count added and usec_per_call recomputed; db<n>: keys and
# expires added; any other field: the first master's value.
# info_per_master(@section): { addr => that master's INFO hash }.

use strict;
use warnings;
use Carp qw(croak);
use Time::HiRes qw(time sleep);
use Redis;

our $AUTOLOAD;

my %FANOUT_MASTERS = map { $_ => 1 } qw(flushall flushdb save bgsave bgrewriteaof
    config_resetstat script_load script_flush function_load function_flush function_delete
    function_restore);
my %FANOUT_ALL = map { $_ => 1 } qw(config_set acl_setuser acl_deluser acl_load);
my %REFUSED = map { $_ => 1 } qw(multi exec discard watch unwatch shutdown replicaof slaveof
    subscribe psubscribe ssubscribe monitor sync psync);
my %FIRST = map { $_ => 1 } qw(config_get time echo lastsave role auth command
    script_exists script_kill acl_whoami acl_list acl_users acl_getuser slowlog_get
    memory_stats memory_doctor latency_latest debug_sleep wait readonly readwrite
    client_setname client_getname client_id client_info randomkey);
my %MULTI_SUM = map { $_ => 1 } qw(del unlink exists touch);
my %SIMPLE = map { $_ => 1 } qw(get set hget hset hgetall hdel hexists hlen hscan type ttl pttl
    expire zrange zscore zcard zadd zrem zscan smembers sadd lrange xrange xrevrange xlen xadd
    incr incrby dump restore);

sub new {
    my ($class, %o) = @_;
    croak 'SupportDesk::Cluster::Client: no seeds' unless @{ $o{seeds} || [] };
    my $self = bless {
        retry_timeout => 10,
        read_timeout  => 5,
        %o,
        known => { map { $_ => 1 } @{ $o{seeds} } },
        conn  => {},
        slots => [],     # slot -> master addr
        pid   => $$,
    }, $class;
    $self->refresh;
    return $self;
}

sub DESTROY { }

sub _conn {
    my ($self, $addr) = @_;
    if ($self->{pid} != $$) { $self->{conn} = {}; $self->{pid} = $$ }
    my $c = $self->{conn}{$addr};
    return $c if $c && $c->{sock};
    $c = Redis->new(server => $addr, reconnect => 0, cnx_timeout => 2,
        read_timeout => $self->{read_timeout}, write_timeout => 5,
        name => $SupportDesk::Cluster::CLIENT_NAME,
        (defined $self->{password} ? (password => $self->{password}) : ()),
        (defined $self->{user} ? (username => $self->{user}) : ()));
    return $self->{conn}{$addr} = $c;
}

# the slot map from the first node (known so far) that gives it
sub refresh {
    my ($self) = @_;
    my @try = sort keys %{ $self->{known} };
    my $err = '';
    for my $addr (@try) {
        my $slots = eval { $self->_conn($addr)->cluster('slots') };
        if (!$slots) { $err = $@; delete $self->{conn}{$addr}; next }
        my @map;
        for my $r (@$slots) {
            my ($from, $to, $m, @reps) = @$r;
            my $ma = "$m->[0]:$m->[1]";
            $map[$_] = $ma for $from .. $to;
            $self->{known}{"$_->[0]:$_->[1]"} = 1 for $m, @reps;
        }
        $self->{slots} = \@map;
        my %m = map { $_ => 1 } grep { defined } @map;
        $self->{masters} = [ sort keys %m ];
        return 1;
    }
    croak "no node of the cluster gives its slot map (@try): $err";
}

# the masters of the map, sorted (as of the last refresh)
sub masters { @{ $_[0]{masters} } }

sub master_of_slot { $_[0]{slots}[ $_[1] ] }
sub master_of_key  { $_[0]{slots}[ SupportDesk::Cluster::keyslot($_[1]) ] }

# runs $method(@args) on the master of $slot (undef: on $addr), following
# redirects; in the caller's context
sub _on_slot {
    my ($self, $want, $slot, $addr, $method, @args) = @_;
    $addr //= $self->{slots}[$slot] // do { $self->refresh; $self->{slots}[$slot] }
        // croak "slot $slot has no master";
    my ($asking, $redirects) = (0, 0);
    my $deadline = time + $self->{retry_timeout};
    my $pause = 0.02;
    while (1) {
        my @r;
        my $ok = eval {
            my $c = $self->_conn($addr);
            $c->asking if $asking;
            @r = $want ? $c->$method(@args) : scalar $c->$method(@args);
            1;
        };
        return $want ? @r : $r[0] if $ok;
        my $err = $@;
        $asking = 0;
        if ($err =~ /\] (MOVED|ASK) (\d+) (\S+?),/) {
            croak "too many redirects for $method: $err" if ++$redirects > 16;
            if ($1 eq 'ASK') { $asking = 1; $addr = $3; next }
            $self->{slots}[$2] = $3;
            $self->{known}{$3} = 1;
            $self->{masters} = [ sort keys %{ { map { $_ => 1 } @{ $self->{masters} }, $3 } } ];
            eval { $self->refresh };
            $addr = defined $slot ? $self->{slots}[$slot] // $3 : $3;
            next;
        }
        my $conn_err = $err =~ /Could not connect|Error while reading|closed connection|Could not write|Not connected/;
        if ($conn_err || $err =~ /\] (TRYAGAIN|CLUSTERDOWN|LOADING|MASTERDOWN)\b/) {
            croak $err if time > $deadline;
            delete $self->{conn}{$addr} if $conn_err;
            sleep $pause;
            $pause *= 2 if $pause < 0.2;
            if (defined $slot) {
                eval { $self->refresh };
                $addr = $self->{slots}[$slot] // $addr;
            }
            next;
        }
        die $err;
    }
}

# the keys of a command, and where they start (per the comment above)
sub _keys_of {
    my ($cmd, @args) = @_;
    if ($cmd =~ /^(?:eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)\z/) {
        my $n = $args[1] // 0;
        croak "$cmd without keys in cluster mode: name at least one key (KEYS[1]) so that it goes to its slot"
            unless $n =~ /^\d+\z/ && $n > 0;
        return @args[2 .. 1 + $n];
    }
    return $args[1] if $cmd eq 'object' || $cmd eq 'memory';
    if ($cmd eq 'xread' || $cmd eq 'xreadgroup') {
        my ($i) = grep { lc $args[$_] eq 'streams' } 0 .. $#args or croak "$cmd without STREAMS";
        my @rest = @args[$i + 1 .. $#args];
        return @rest[0 .. @rest / 2 - 1];
    }
    return @args if $MULTI_SUM{$cmd} || $cmd eq 'mget';
    return $args[0];
}

sub AUTOLOAD {
    my $self = shift;
    (my $method = $AUTOLOAD) =~ s/.*:://;
    my $cmd = lc $method;
    my $want = wantarray;
    croak "$method is not available on a cluster client" if $REFUSED{$cmd};
    if ($cmd eq 'select') {
        croak 'a cluster has only database 0' if ($_[0] // 0) != 0;
        return 'OK';
    }
    return $self->_scan(@_) if $cmd eq 'scan';
    return $self->info(@_) if $cmd eq 'info';
    if ($cmd eq 'keys') {
        my %k = map { $_ => 1 } map { $self->_on_slot(1, undef, $_, 'keys', @_) } $self->masters;
        return $want ? sort keys %k : [ sort keys %k ];
    }
    if ($cmd eq 'dbsize') {
        my $n = 0;
        $n += $self->_on_slot(0, undef, $_, 'dbsize') for $self->masters;
        return $n;
    }
    if ($cmd eq 'ping') {
        my @r = map { $self->_on_slot(0, undef, $_, 'ping') } $self->masters;
        return (grep { !defined || $_ ne 'PONG' } @r) ? undef : 'PONG';
    }
    if ($cmd eq 'client_list' || ($cmd eq 'client' && lc($_[0] // '') eq 'list')) {
        return join "\n", map { my $l = $self->_on_slot(0, undef, $_, $method, @_); $l =~ s/\n+\z//; $l }
            $self->masters;
    }
    if ($cmd eq 'quit') {
        eval { $_->quit } for values %{ $self->{conn} };
        $self->{conn} = {};
        return 1;
    }
    my $sub = $cmd =~ /^(config|script|function|acl|client|cluster)\z/ && @_
        ? "${cmd}_" . lc $_[0] : $cmd;
    if ($FANOUT_MASTERS{$sub} || $FANOUT_ALL{$sub}) {
        my @to = $FANOUT_ALL{$sub} ? $self->_all_nodes : $self->masters;
        my @first;
        for my $a (@to) {
            my @r = $self->_on_slot(1, undef, $a, $method, @_);
            @first = @r unless @first;
        }
        return $want ? @first : $first[0];
    }
    if ($FIRST{$sub} || $sub =~ /^cluster_/ || $cmd eq 'cluster') {
        return $self->_on_slot($want, undef, ($self->masters)[0], $method, @_);
    }
    # the common case: one key, the first argument
    return $self->_on_slot($want, SupportDesk::Cluster::keyslot($_[0]), undef, $method, @_)
        if $SIMPLE{$cmd};
    my @keys = _keys_of($cmd, @_);
    croak "$method: no key to route it by" unless @keys && defined $keys[0];
    my %by_slot;
    push @{ $by_slot{ SupportDesk::Cluster::keyslot($_) } }, $_ for @keys;
    if (keys %by_slot > 1 && $MULTI_SUM{$cmd}) {
        my $n = 0;
        $n += $self->_on_slot(0, $_, undef, $method, @{ $by_slot{$_} }) for sort { $a <=> $b } keys %by_slot;
        return $n;
    }
    if (keys %by_slot > 1 && $cmd eq 'mget') {
        my %v;
        for my $s (keys %by_slot) {
            my @k = @{ $by_slot{$s} };
            my @r = $self->_on_slot(1, $s, undef, $method, @k);
            @v{@k} = @r;
        }
        my @r = @v{@keys};
        return $want ? @r : \@r;
    }
    return $self->_on_slot($want, SupportDesk::Cluster::keyslot($keys[0]), undef, $method, @_);
}

sub _all_nodes {
    my ($self) = @_;
    my @n;
    for my $a (sort keys %{ $self->{known} }) {
        push @n, $a if eval { $self->_conn($a)->ping };
    }
    return @n;
}

# the slot of a SCAN/KEYS pattern whose hash tag is literal (every key it
# matches has that tag), else undef
sub _pattern_slot {
    my ($p) = @_;
    my $s = index($p, '{');
    return undef if $s < 0;
    my $e = index($p, '}', $s + 1);
    return undef if $e <= $s + 1;
    return undef if substr($p, 0, $e) =~ /[*?\[\\]/;
    return SupportDesk::Cluster::keyslot(substr($p, 0, $e + 1));
}

# SCAN over every master: the cursor is "<addr>/<cursor of that master>",
# "0" when the last master is done
sub _scan {
    my ($self, $cursor, @args) = @_;
    my %o;
    for (my $i = 0; $i < $#args; $i += 2) { $o{ lc $args[$i] } = $args[$i + 1] }
    my @masters = $self->masters;
    if (defined $o{match} && defined(my $slot = _pattern_slot($o{match}))) {
        @masters = ($self->{slots}[$slot]);
    }
    my ($addr, $c) = ($masters[0], 0);
    if ($cursor ne '0') {
        ($addr, $c) = $cursor =~ m{\A(.+)/(\d+)\z} or croak "not a cluster scan cursor: $cursor";
    }
    my ($next, $keys) = $self->_on_slot(1, undef, $addr, 'scan', $c, @args);
    if ($next eq '0') {
        my ($after) = grep { $_ gt $addr } @masters;
        return ($after ? "$after/0" : '0', $keys);
    }
    return ("$addr/$next", $keys);
}

sub info_per_master {
    my ($self, @section) = @_;
    return { map { $_ => scalar $self->_on_slot(0, undef, $_, 'info', @section) } $self->masters };
}

sub info {
    my ($self, @section) = @_;
    my $per = $self->info_per_master(@section);
    my %sum;
    for my $addr (sort keys %$per) {
        my $h = $per->{$addr};
        for my $k (keys %$h) {
            my $v = $h->{$k};
            if (!exists $sum{$k}) { $sum{$k} = $v; next }
            if ($v =~ /\A-?\d+(?:\.\d+)?\z/ && $sum{$k} =~ /\A-?\d+(?:\.\d+)?\z/) {
                $sum{$k} += $v;
            } elsif ($k =~ /^(?:cmdstat_|errorstat_|db\d+\z)/) {
                my %a = map { split /=/, $_, 2 } split /,/, $sum{$k};
                my %b = map { split /=/, $_, 2 } split /,/, $v;
                $a{$_} = ($a{$_} // 0) + $b{$_}
                    for grep { /^(?:calls|usec|rejected_calls|failed_calls|count|keys|expires)\z/ } keys %b;
                $a{usec_per_call} = sprintf '%.2f', $a{calls} ? $a{usec} / $a{calls} : 0
                    if exists $a{usec_per_call};
                my @order = map { (split /=/, $_, 2)[0] } split /,/, $sum{$k};
                $sum{$k} = join ',', map { "$_=$a{$_}" } @order;
            }
        }
    }
    return \%sum;
}

1;
