# Redis down (503 at once, back without reload), Redis paused (504 after the
# timeout), a dying Redis connection fails every request waiting on it (503),
# clients that disconnect while their reply is pending: no crash, no leak.
# Configuration: the harness's default (supportdesk_redis_timeout 1s); a
# second environment with supportdesk_redis_timeout 10s.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use SupportDesk::Test qw(envelope_ok wait_until single_redis_only tls_mode);

single_redis_only('the one Redis stopped, paused for seconds and killed (a cluster\'s faults are a master killed and slots moved, t/70 and the cluster fault tests)');

my $env = SupportDesk::Test->new(redis_timeout => '1s');
my $key = $env->create_key('acme');
my $r;

sub get { my ($k, $ext) = @_; $env->api('GET', $ext // 'f1', $k) }
sub comes_back {
    my ($name, $k, $ext) = @_;
    my $last;
    my $ok = wait_until(sub { $last = get($k, $ext); $last->{status} == 200 }, 5, 0.1);
    ok($ok, "$name: service back within 5 s without reload")
        or diag "last: $last->{status} $last->{body}" . ($last->{error} // '');
}
sub timed { my $cb = shift; my $t = time; my $x = $cb->(); $x->{took} = time - $t; $x }

$r = $env->api('PATCH', 'f1', $key, { email => 'f1@example.com', name => 'F One' });
envelope_ok($r, 200, undef, 'setup: create f1');
envelope_ok(get($key), 200, undef, 'setup: GET f1');
my @workers = $env->worker_pids;
my $unused_key = $env->create_key('acme', 'never used before the outage');

# ---- Redis stopped
$env->stop_redis;    # SAVE + SIGTERM, the data comes back on start
for my $i (1 .. 3) {
    $r = timed(sub { get($key) });
    envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', "Redis down: GET #$i (cached key) is 503");
    diag sprintf "503 after %.3fs", $r->{took} if $i == 1;
}
$r = $env->api('PATCH', 'f2', $key, { email => 'f2@example.com', name => 'F Two' });
envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', 'Redis down: PATCH is 503');
$r = get($unused_key);
envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', 'Redis down: a key not in the cache is 503, not 401');
$r = $env->api('DELETE', 'f1', $key);
envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', 'Redis down: DELETE is 503');

$env->start_redis;
comes_back('Redis restarted', $key);
$r = get($key);
is($r->{json}{data}{customer}{name}, 'F One', 'f1 intact after the restart');
envelope_ok(get($unused_key), 200, undef, 'a key looked up during the outage works (failure not cached)');
$r = $env->api('PATCH', 'f2', $key, { email => 'f2@example.com', name => 'F Two' });
envelope_ok($r, 200, undef, 'PATCH works again');
$env->invariants_ok('acme');

# ---- Redis paused: reply timeout
$env->pause_redis;
$r = timed(sub { get($key) });
envelope_ok($r, 504, 'GATEWAY_TIMEOUT', 'Redis paused: GET is 504');
diag sprintf "504 after %.3fs", $r->{took};
$r = $env->api('PATCH', 'f3', $key, { email => 'f3@example.com', name => 'F Three' });
envelope_ok($r, 504, 'GATEWAY_TIMEOUT', 'Redis paused: PATCH is 504');
# a timeout fails the connection, which reconnects after a backoff (50 ms,
# doubling to 500 ms) and answers 503 meanwhile (t/36-admission.t): past
# it, the request waits on the new connection, and times out. In TLS mode
# (SD_TLS=1) the new connection's handshake cannot complete against a
# paused Redis (in plaintext the kernel completes the TCP connect): it is a
# connect that times out, 503 like any failed connect
sleep 0.6;
$r = get('sdk_not_cached_' . int rand 1e9);
if (tls_mode()) {
    envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', 'Redis paused: key lookup is 503 (TLS: the handshake times out)');
} else {
    envelope_ok($r, 504, 'GATEWAY_TIMEOUT', 'Redis paused: key lookup is 504');
}
$env->resume_redis;
comes_back('Redis resumed', $key);
$env->invariants_ok('acme');

# ---- clients that disconnect while their reply is pending
sub pending_requests {
    return map { $_ % 2
        ? $env->http_bytes('GET', '/api/v1/customers/f1', headers => { 'X-API-Key' => $key })
        : $env->http_bytes('PATCH', "/api/v1/customers/gone_$_", headers => { 'X-API-Key' => $key },
                           body => { email => "gone$_\@example.com", name => 'Gone' }) } 1 .. 6;
}
# (a) the reply arrives after the client left
$env->pause_redis;
$env->parallel([ pending_requests() ], close_after => 0.3);
$env->resume_redis;
sleep 0.3;
comes_back('after clients left and Redis answered late', $key);
# (b) the timeout fires after the client left, the reply comes later still
$env->pause_redis;
$env->parallel([ pending_requests() ], close_after => 0.3);
sleep 1.6;
$env->resume_redis;
sleep 0.3;
comes_back('after clients left and their requests timed out', $key);
$env->invariants_ok('acme');

is_deeply([ $env->worker_pids ], \@workers, 'the same worker still serves (no crash, no respawn)');
my $log = $env->nginx_error_log;
unlike($log, qr/exited on signal/, 'no worker crashed');
unlike($log, qr/worker process \d+ exited/, 'no worker exited');
unlike($log, qr/\[alert\]/, 'no alert in the error log');

ok($env->stop_nginx(timeout => 10), 'graceful stop (QUIT) within 10 s');
$log = $env->nginx_error_log;
unlike($log, qr/open socket .* left in connection/, 'no open socket left at exit');
unlike($log, qr/exited on signal/, 'no crash at exit');
unlike($log, qr/\[alert\]/, 'no alert at exit') or diag join "\n", grep { /\[alert\]/ } split /\n/, $log;

# ---- a Redis connection that dies fails every request waiting on it (503)
{
    my $env2 = SupportDesk::Test->new(redis_timeout => '10s');
    my $k2 = $env2->create_key('acme');
    envelope_ok($env2->api('PATCH', 'd1', $k2, { email => 'd1@example.com', name => 'D' }),
                200, undef, 'second env: setup');
    $env2->pause_redis;
    my $redis_pid = $env2->redis_pid;
    my $killer = fork;
    if (!$killer) { sleep 0.5; kill 'KILL', $redis_pid; POSIX::_exit(0) }
    my $t = time;
    my @res = $env2->parallel([ map { $env2->http_bytes('GET', '/api/v1/customers/d1',
        headers => { 'X-API-Key' => $k2 }) } 1 .. 5 ], timeout => 8);
    waitpid $killer, 0;
    $env2->kill_redis;
    envelope_ok($_, 503, 'SERVICE_UNAVAILABLE', 'request waiting on a dead connection: 503')
        for @res;
    diag sprintf "answered %.3fs after the requests were sent", time - $t;

    $env2->start_redis;    # empty: SIGKILL lost the data
    $env2->create_key('acme', 'again', $k2);
    my $last;
    ok(wait_until(sub {
        $last = $env2->api('PATCH', 'd2', $k2, { email => 'd2@example.com', name => 'D2' });
        $last->{status} == 200 }, 5, 0.1), 'service back after Redis was killed and restarted')
        or diag "$last->{status} $last->{body}";
    ok($env2->stop_nginx(timeout => 10), 'second env: graceful stop');
    my $log2 = $env2->nginx_error_log;
    unlike($log2, qr/exited on signal|open socket .* left|\[alert\]/, 'second env: no crash, no leak')
        or diag join "\n", grep { /signal|left|alert/ } split /\n/, $log2;
}

done_testing;
