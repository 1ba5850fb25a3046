# Reads keep working while Redis pauses writes (issue 10 item 8): CLIENT
# PAUSE <ms> WRITE, what FAILOVER and a managed Redis's maintenance use,
# holds back every client that sends a write, and everything that client
# sent after it.  Every read route runs a plain read or a no-writes script
# (GET of a customer, the list, notes, notification settings, the change
# feed, a job), the job runner's look for work is a plain ZRANGE, and its
# claims and chunks go on its own connection: reads are answered 200
# throughout a pause, while the runner polls and while a job is running; a
# write waits for the pause like any write (504 after the timeout here).
# Configuration: worker_processes 1, supportdesk_redis_connections 1 (every
# request on the one connection the poll uses), supportdesk_redis_timeout
# 1s, supportdesk_job_chunk_size 10; pauses of 3 s (on a cluster: every
# master paused).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok wait_until cluster_mode);

my $PAUSE = 3000;
my $env = SupportDesk::Test->new(
    redis_timeout => '1s',
    http_conf     => 'supportdesk_redis_connections 1; supportdesk_job_chunk_size 10;',
);
my $key = $env->create_key('acme', 'pause');
my $R = $env->redis;

# CLIENT PAUSE on the one Redis, or on every master of a cluster (the
# registry sd:jobapps and the app may be on different ones)
sub pause_writes {
    my ($ms) = @_;
    if (!cluster_mode()) { $R->client_pause($ms, 'WRITE'); return }
    $env->cluster->node_client($_)->client_pause($ms, 'WRITE') for $env->cluster->masters;
}
envelope_ok($env->api('PATCH', 'c1', $key, { email => 'c1@acme.com', name => 'C One' }), 200, undef, 'a customer');
envelope_ok($env->api('GET', 'c1', $key), 200, undef, 'GET it (its key is cached now)');

envelope_ok($env->api('POST', 'c1/notes', $key, { note => 'a note' }), 201, undef, 'a note');

sub calls { my ($cmd) = @_; ($R->info('commandstats')->{"cmdstat_$cmd"} // '') =~ /calls=(\d+)/ ? $1 : 0 }

# every read route, in turn (GET /jobs once there is a job)
my @reads = ('c1', '/api/v1/customers?limit=5', '/api/v1/customers?email=c1',
             'c1/notes', 'c1/notifications', '/api/v1/events?limit=5');

# GETs every 100 ms for most of a pause: (answered 200 in time, all, problems)
sub reads_during_pause {
    my ($what) = @_;
    my ($ok, $n, @bad) = (0, 0);
    my $t0 = time;
    pause_writes($PAUSE);
    while (time - $t0 < ($PAUSE - 400) / 1000) {
        my $t = time;
        my $path = $reads[$n % @reads];
        my $r = $env->api('GET', $path, $key, undef, timeout => 5);
        my $took = time - $t;
        $n++;
        if ($r->{status} == 200 && $took < 1) { $ok++ }
        else { push @bad, sprintf 'GET %s: %s after %.2f s at %.2f s', $path, $r->{status}, $took, $t - $t0 }
        sleep 0.1;
    }
    # the rest of the pause
    sleep(($PAUSE / 1000) - (time - $t0) + 0.2) if time - $t0 < $PAUSE / 1000 + 0.2;
    return ($ok, $n, \@bad);
}

# ---------------------------------------------------------------- while the runner polls
{
    my $before = calls('zrange');
    my ($ok, $n, $bad) = reads_during_pause('polls');
    is($ok, $n, "while writes are paused and the runner polls: all $n GETs (every read route) answered 200 within the timeout")
        or diag join "\n", @$bad;
    cmp_ok(calls('zrange') - $before, '>=', 4, 'the runner polled meanwhile (ZRANGE sd:jobapps every 500 ms)');
}

# ---------------------------------------------------------------- while a job runs
{
    my $r = $env->api('POST', '/api/v1/customers/bulk-update', $key, { filter => { externalId => ['c1'] }, set => { phone => '+1' } });
    envelope_ok($r, 202, undef, 'a small job');
    my $id = $r->{json}{data}{jobId} // '';
    ok(wait_until(sub { ($env->api('GET', "/api/v1/jobs/$id", $key)->{json}{data}{job}{status} // '') eq 'done' }, 10, 0.05),
       '... done');
    push @reads, "/api/v1/jobs/$id";
}
$env->seed_customers('acme', [ map { { externalId => "j$_", email => "j$_\@acme.com", name => "J $_" } } 1 .. 5000 ]);
{
    my $r = $env->api('POST', '/api/v1/customers/bulk-update', $key, { filter => {}, set => { phone => '+1 555 0000' } });
    envelope_ok($r, 202, undef, 'a job of 5,001 customers in chunks of 10');
    my ($n) = ($r->{json}{data}{jobId} // '') =~ /(\d+)$/;
    ok(wait_until(sub { ($R->hget("sd:{acme}:job:$n", 'updated') // 0) > 0 }, 10, 0.01), 'the job is running');
    my ($ok, $total, $bad) = reads_during_pause('job');
    is($ok, $total, "while writes are paused and a job runs: all $total GETs (every read route) answered 200 within the timeout")
        or diag join "\n", @$bad;
    my %j = $R->hgetall("sd:{acme}:job:$n");
    isnt($j{status}, 'done', '... the job was still running when the pause ended') or diag "job: @{[ %j ]}";
    ok(wait_until(sub { ($R->hget("sd:{acme}:job:$n", 'status') // '') eq 'done' }, 60, 0.1), 'the job goes on after the pause, done');
    %j = $R->hgetall("sd:{acme}:job:$n");
    is_deeply([ @j{qw(matched updated)} ], [5001, 5001], 'every customer updated, once');
    my $phones = $R->eval(q{local n = 0 for i = 1, 5000 do if redis.call('HGET', 'sd:{acme}:c:j' .. i, 'p') == ARGV[1] then n = n + 1 end end return n},
                          1, 'sd:{acme}:c:j1', '+1 555 0000');
    is($phones, 5000, '... as Redis shows');
}

# ---------------------------------------------------------------- a write waits
{
    pause_writes($PAUSE);
    my $t = time;
    my $r = $env->api('PATCH', 'c1', $key, { name => 'C Paused' }, timeout => 5);
    envelope_ok($r, 504, 'GATEWAY_TIMEOUT', 'a write while writes are paused waits: 504 after the timeout');
    cmp_ok(time - $t, '>=', 0.9, '... after about a second');
    sleep(($PAUSE / 1000) - (time - $t) + 0.3);
    ok(wait_until(sub { $env->api('GET', 'c1', $key)->{status} == 200 }, 5, 0.1), 'after the pause, answered again');
    envelope_ok($env->api('PATCH', 'c1', $key, { name => 'C After' }), 200, undef, '... writes too');
}
$env->invariants_ok('acme');
done_testing;
