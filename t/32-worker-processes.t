# Only the processes that serve requests (nginx workers, or the one process
# of master_process off) open Redis connections and run bulk-update jobs:
# with a proxy_cache_path the cache manager and cache loader run the
# module's init_process too, and must stay away from Redis.
# Configuration: worker_processes 2, supportdesk_redis_connections 3,
# a proxy_cache_path (so nginx starts a cache manager and a cache loader).
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(envelope_ok wait_until single_redis_only);

single_redis_only('which nginx processes hold connections to the one Redis (CLIENT LIST counts per server)');

my $WORKERS = 2;
my $CONNS   = 3;
my $single  = ($ENV{SD_MASTER_PROCESS} // 'on') eq 'off';

my $env = SupportDesk::Test->new(
    worker_processes => $WORKERS,
    http_conf => "supportdesk_redis_connections $CONNS;\n"
               . "    proxy_cache_path %TMP%/cache levels=1 keys_zone=sdcache:1m;",
);
my $key = $env->create_key('acme');
my $R = $env->redis;

sub slurp { my $f = shift; open my $fh, '<', $f or return ''; local $/; my $c = <$fh>; $c // '' }
sub title { my $t = slurp("/proc/$_[0]/cmdline"); $t =~ s/\0+/ /g; $t =~ s/\s+\z//; $t }

# the nginx processes by role: workers, helpers (cache manager, loader)
sub roles {
    my (@workers, @helpers);
    for my $pid ($env->worker_pids) {
        my $t = title($pid);
        if ($single || $t =~ /worker process/) { push @workers, $pid }
        elsif ($t =~ /cache (?:manager|loader) process/) { push @helpers, $pid }
    }
    return (\@workers, \@helpers);
}

# pid => number of TCP connections it holds to the test's Redis port
# (the socket inodes of /proc/net/tcp against each process's fds)
sub redis_conns_by_pid {
    my $port = sprintf '%04X', $env->nginx_redis_port;
    my %inode;
    for my $l (split /\n/, slurp('/proc/net/tcp')) {
        my @f = split ' ', $l;
        next unless @f > 9 && $f[2] =~ /^[0-9A-F]+:$port\z/ && $f[3] eq '01';
        $inode{ $f[9] } = 1;    # established, remote port = Redis
    }
    my %n;
    my %seen;
    for my $pid (grep { !$seen{$_}++ } $env->worker_pids, $env->nginx_pid) {
        opendir my $d, "/proc/$pid/fd" or next;
        for my $fd (readdir $d) {
            my $t = readlink "/proc/$pid/fd/$fd" // next;
            $n{$pid}++ if $t =~ /^socket:\[(\d+)\]$/ && $inode{$1};
        }
    }
    return \%n;
}

my ($workers, $helpers);
ok(wait_until(sub { ($workers, $helpers) = roles(); @$workers == ($single ? 1 : $WORKERS)
                    && ($single || @$helpers == 2) }, 10),
   'nginx runs its workers' . ($single ? '' : ', a cache manager and a cache loader'))
    or diag join "\n", map { "$_: " . title($_) } $env->worker_pids;
my $want = ($single ? 1 : $WORKERS) * $CONNS;

# every worker opens its connections when it starts; the helpers none
my ($by, $clients);
ok(wait_until(sub {
    $by = redis_conns_by_pid();
    # CLIENT LIST without the test's own connection (the one running it)
    $clients = grep { /\bcmd=(?!client)/ } split /\n/, $R->client_list;
    my $total = 0; $total += $_ for values %$by;
    $total == $want && $clients == $want }, 10),
   "the workers hold $want Redis connections, as many as CLIENT LIST shows")
    or diag "by pid: " . join(', ', map { "$_ (" . title($_) . "): $by->{$_}" } sort keys %$by)
          . "; CLIENT LIST: $clients";
my %is_worker = map { $_ => 1 } @$workers;
is_deeply([ grep { !$is_worker{$_} } sort keys %$by ], [], 'no other nginx process holds a Redis connection');
is($by->{$_} // 0, $CONNS, "worker $_ holds supportdesk_redis_connections ($CONNS)") for @$workers;

# the API works, and the jobs are run by workers only
envelope_ok($env->api('PATCH', 'c1', $key, { email => 'c1@example.com', name => 'C One' }),
            200, undef, 'a request is served');
my @jobs;
for my $i (1 .. 12) {
    my $r = $env->api('POST', '/api/v1/customers/bulk-update', $key,
                      { filter => {}, set => { name => "Round $i" } });
    envelope_ok($r, 202, undef, "job $i accepted") or next;
    push @jobs, $r->{json}{data}{jobId};
}
ok(wait_until(sub {
    !grep { my $j = $env->api('GET', "/api/v1/jobs/$_", $key)->{json}{data}{job};
            !$j || $j->{status} ne 'done' } @jobs }, 30, 0.1),
   'every job is done');
my @runners = $env->nginx_error_log =~ /\[info\] (\d+)#\d+: supportdesk: running bulk-update job/g;
is(scalar @runners, scalar @jobs, 'each job was claimed once');
is_deeply([ grep { !$is_worker{$_} } @runners ], [], 'only workers claimed jobs')
    or diag 'claimed by: ' . join(', ', map { "$_ (" . title($_) . ")" } @runners);

($workers, $helpers) = roles();
$by = redis_conns_by_pid();
is_deeply([ grep { !$is_worker{$_} } sort keys %$by ], [],
          'still no Redis connection outside the workers after the jobs');

done_testing;
