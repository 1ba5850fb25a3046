# supportdesk_redis_wait 1 1500ms: a write is answered only once a replica
# has it (WAIT pipelined behind the write, one round trip); with the
# replica stopped, writes are answered 503 after the WAIT timeout (logged:
# the write may have been applied on the master) and reads are served as
# before; the replica back, writes are acknowledged again.
# Configuration: the harness's Redis as master, a second redis-server as
# its replica (in TLS mode replicating over TLS); supportdesk_redis_timeout
# 4s.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Redis;
use SupportDesk::Test qw(envelope_ok error_ok wait_until tls_mode);
use SupportDesk::TLS;

plan skip_all => 'single Redis only: the cluster pass replicates by itself'
    if $ENV{SD_CLUSTER};

my $env = SupportDesk::Test->new(redis_timeout => '4s',
    http_conf => 'supportdesk_redis_wait 1 1500ms;');
my $key = $env->create_key('acme');
my $R = $env->redis;

# the replica, in the environment's directory
my $rport = SupportDesk::Test::free_port();
my $rtls = tls_mode() ? SupportDesk::Test::free_port() : undef;
my $rpid;
sub start_replica {
    $rpid = fork // die "fork: $!";
    if (!$rpid) {
        open STDOUT, '>>', $env->tmp . '/replica.log';
        open STDERR, '>&', \*STDOUT;
        # TLS mode: the replica has a TLS port too and replicates from the
        # master's TLS port (tls-replication)
        exec SupportDesk::Test::redis_server_bin(), '--port', $rport, '--bind', '127.0.0.1',
            '--save', '', '--appendonly', 'no', '--dir', $env->tmp, '--dbfilename', 'replica.rdb',
            '--replicaof', '127.0.0.1', $env->nginx_redis_port, '--protected-mode', 'no',
            (tls_mode() ? SupportDesk::TLS::redis_args($rtls) : ());
        exit 127;
    }
    ok(wait_until(sub {
        my $info = eval { Redis->new(server => "127.0.0.1:$rport", reconnect => 0)->info('replication') } or return 0;
        ($info->{master_link_status} // '') eq 'up';
    }, 10, 0.1), 'the replica is in sync');
}
sub stop_replica { kill 'KILL', $rpid; waitpid $rpid, 0; undef $rpid }
END { kill 'KILL', $rpid if $rpid }

start_replica();
if (tls_mode()) {
    my @links = grep { /\bflags=S\b/ } split /\n/, $R->client_list;
    my $p = $env->redis_tls_port;
    ok(@links && !grep({ !/\bladdr=127\.0\.0\.1:$p\b/ } @links), 'TLS mode: the replica replicates over the TLS port')
        or diag "@links";
}

# ---- acknowledged by the replica
my $r = $env->api('PATCH', 'w1', $key, { email => 'w1@example.com', name => 'W One' });
envelope_ok($r, 200, undef, 'a write with the replica up: 200');
my $replica = Redis->new(server => "127.0.0.1:$rport", reconnect => 0);
is($replica->hget('sd:{acme}:c:w1', 'e'), 'w1@example.com', '... and the replica has it when the answer comes');
# The job runner's poll (ZRANGE sd:jobapps, every 500 ms whatever the test
# does) is a read, without WAIT; its writes (claims, chunks, the registry's
# script) would each have one: the slow log, which records every command
# here, counts them (none without a job)
$R->config_set('slowlog-log-slower-than', 0);
$R->config_set('slowlog-max-len', 10000);
sub reset_counts { $R->config_resetstat; $R->slowlog('reset') }
sub job_polls {
    return scalar grep { ref $_->[3] && lc($_->[3][0] // '') eq 'evalsha' && grep { $_ eq 'sd:jobapps' || /^sd:\{[^}]*\}:jobq$/ } @{ $_->[3] } }
        @{ $R->slowlog('get', -1) };
}
sub waits { my $w = $R->info('commandstats')->{cmdstat_wait} // 'calls=0,'; ($w =~ /^calls=(\d+),/)[0] }
reset_counts();
for my $i (1 .. 5) {
    envelope_ok($env->api('PATCH', 'w1', $key, { name => "W $i" }), 200, undef, "write $i acknowledged");
}
my ($polls, $waits) = (job_polls(), waits());
is($waits, 5 + $polls, "one WAIT per write ($waits WAITs: 5 writes, $polls job polls)");
reset_counts();
envelope_ok($env->api('GET', 'w1', $key), 200, undef, 'a read');
envelope_ok($env->api('GET', '/api/v1/customers', $key), 200, undef, 'a listing');
($polls, $waits) = (job_polls(), waits());
is($waits, $polls, "reads send no WAIT ($waits WAITs, $polls job polls)");
$R->config_set('slowlog-log-slower-than', 10000);
error_ok($env->api('PATCH', 'w9', $key, { email => 'w1@example.com', name => 'Taken' }), 409, 'CUSTOMER_EMAIL_EXISTS', undef,
         'a refused write: its own error, at once');

# ---- the replica gone: 503 after the WAIT timeout, the write on the master
stop_replica();
my $t = time;
$r = $env->api('PATCH', 'w1', $key, { name => 'Unacknowledged' });
my $took = time - $t;
# 503 (not the 504 of supportdesk_redis_timeout): WAIT gave up
error_ok($r, 503, 'SERVICE_UNAVAILABLE', undef, 'a write with no replica: 503');
cmp_ok($took, '>=', 1.49, sprintf('... after the WAIT timeout (%.3f s)', $took));
is($R->hget('sd:{acme}:c:w1', 'n'), 'Unacknowledged', '... the master applied it, as README says it may');
like($env->nginx_error_log, qr/\[error\] .*a write reached 0 of the 1 replicas supportdesk_redis_wait asks for within 1500 ms; answering 503/,
     '... logged');
envelope_ok($env->api('GET', 'w1', $key), 200, undef, 'reads are served meanwhile');

# ---- back
start_replica();
envelope_ok($env->api('PATCH', 'w1', $key, { name => 'Again' }), 200, undef, 'the replica back: writes acknowledged again');
$env->invariants_ok('acme');
stop_replica();

done_testing;
