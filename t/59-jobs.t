# Bulk-update jobs between apps and gateways (issue 10 item 5):
# - fair: an app's small job runs while another app's three big jobs,
#   accepted before it, are still running (one FIFO for all apps ran it
#   after all three);
# - finished jobs expire after supportdesk_job_ttl (then GET /jobs is 404)
#   and leave the queues;
# - an externalId filter looks its ids up directly: one chunk, no walk of
#   the app's 20,000 customers; each id once, only customers that existed
#   when the job was accepted;
# - leases are in Redis's time: a gateway whose clock is an hour ahead
#   does not take over a job another gateway holds under a live lease;
# - the registry of apps with work (sd:jobapps, one key) and an app's
#   queue are written in two steps: an app registered by a gateway that
#   died before queueing is dropped after the grace period, and a job
#   queued while a runner drops its app is not lost (the gateway registers
#   again); jobs of the first layout (sd:jobs) are adopted.
# Configuration: worker_processes 1, supportdesk_job_chunk_size 50,
# supportdesk_job_ttl 3s; SLOWLOG of every command (slower than 0 us).  The
# last part runs a second nginx whose wall clock is an hour ahead
# (t/lib/clock-skew.c, LD_PRELOADed; not under valgrind).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok json_encode wait_until);

my $TTL = 3;
my $env = SupportDesk::Test->new(
    redis_timeout => '5s',
    redis_args    => ['--slowlog-log-slower-than', '0', '--slowlog-max-len', '100000'],
    http_conf     => "supportdesk_job_chunk_size 50; supportdesk_job_ttl ${TTL}s;",
);
my $R = $env->redis;
my %key = map { $_ => $env->create_key($_, "$_ jobs") } qw(alpha beta);

sub bulk {
    my ($app, $body) = @_;
    my $r = $env->api('POST', '/api/v1/customers/bulk-update', $key{$app}, $body);
    envelope_ok($r, 202, undef, "$app: job accepted") or return;
    my ($n) = ($r->{json}{data}{jobId} // '') =~ /^job_(\d+)$/;
    return $n;
}
sub job { my ($app, $n) = @_; +{ $R->hgetall("sd:{$app}:job:$n") } }
# SLOWLOG of the server that holds an app: the one Redis, or its master
sub slowlog_of {
    my ($e, $app, @args) = @_;
    my $c = $e->cluster or return $e->redis->slowlog(@args);
    return $c->node_client($c->master_of_key("sd:{$app}:seq"))->slowlog(@args);
}
# Redis's clock (ms): the one server's, or a master's (on one host they agree)
sub redis_ms_now {
    my ($e) = @_;
    $e //= $env;
    my $c = $e->cluster;
    my ($s, $us) = @{ $c ? $c->node_client(($c->masters)[0])->time : $e->redis->time };
    return $s * 1000 + int($us / 1000);
}

# ---------------------------------------------------------------- fairness
$env->seed_customers('alpha', [ map { { externalId => "a$_", email => "a$_\@alpha.example", name => "Alpha $_" } } 1 .. 3000 ]);
$env->seed_customers('beta', [ map { { externalId => "b$_", email => "b$_\@beta.example", name => "Beta $_" } } 1 .. 10 ]);

my @alpha = map { bulk('alpha', { filter => {}, set => { name => "Alpha round $_" } }) } 1 .. 3;
ok(wait_until(sub { my $j = job('alpha', $alpha[0]); ($j->{status} // '') eq 'running' && $j->{updated} > 0 }, 10, 0.005),
   "alpha's first job is running");
my $beta = bulk('beta', { filter => {}, set => { name => 'Beta renamed' } });
my (%at_beta, %done, $beta_ttl);
ok(wait_until(sub {
       my $b = job('beta', $beta);
       return 0 unless ($b->{status} // '') eq 'done';
       $beta_ttl = $R->ttl("sd:{beta}:job:$beta");
       %at_beta = map { $_ => job('alpha', $_) } @alpha;
       $done{beta} = $b;
       1 }, 30, 0.005),
   "beta's job is done");
is($at_beta{ $alpha[0] }{status}, 'running',
   "when beta's job was done, alpha's first job (accepted before it) was still running")
    or diag 'alpha then: ' . json_encode(\%at_beta);
cmp_ok($at_beta{ $alpha[0] }{updated}, '<', 3000, '... half way at most');
is_deeply([ map { $at_beta{$_}{status} } @alpha[1, 2] ], ['queued', 'queued'],
          "... and alpha's other two had not started: an app runs one job at a time");
is($done{beta}{updated}, 10, "beta's job updated its 10 customers");

# (a finished job lasts supportdesk_job_ttl: each is kept as it is seen done)
ok(wait_until(sub {
       for my $n (grep { !$done{$_} } @alpha) {
           my $j = job('alpha', $n);
           $done{$n} = $j if ($j->{status} // '') eq 'done';
       }
       !grep { !$done{$_} } @alpha }, 60, 0.02), "alpha's three jobs are done");
is_deeply([ map { $done{$_}{updated} } @alpha ], [3000, 3000, 3000], 'each updated 3000');
is($R->hget('sd:{alpha}:c:a1', 'n'), 'Alpha round 3', 'in the order they were accepted');
is(scalar(() = $env->nginx_error_log =~ /supportdesk: running bulk-update job "(?:alpha|beta)\//g), 4,
   'each job was started once (logged), however many chunks it took');

# ---------------------------------------------------------------- finished jobs expire
{
    ok($beta_ttl > 0 && $beta_ttl <= $TTL, "a finished job expires after supportdesk_job_ttl (TTL $beta_ttl s)");
    is($R->zcard('sd:{alpha}:jobq') + $R->zcard('sd:{beta}:jobq'), 0, 'finished jobs are out of their apps\' queues');
    ok(wait_until(sub { $R->zcard('sd:jobapps') == 0 }, 20, 0.05), 'and the apps out of sd:jobapps (the runner of the last job of each drops it)') or diag join ' ', $R->zrange('sd:jobapps', 0, -1);
    # a job of its own, read as soon as it is done
    my $n = bulk('beta', { filter => {}, set => { name => 'Beta again' } });
    my $r;
    ok(wait_until(sub { $r = $env->api('GET', "/api/v1/jobs/job_$n", $key{beta});
                        ($r->{json}{data}{job}{status} // '') eq 'done' }, 10, 0.02), 'GET /jobs: a job done');
    envelope_ok($r, 200, undef, 'GET /jobs of a job just finished');
    ok(wait_until(sub { !$R->exists("sd:{beta}:job:$n") }, $TTL + 3, 0.1), '... gone from Redis after its TTL');
    envelope_ok($env->api('GET', "/api/v1/jobs/job_$n", $key{beta}), 404, 'NOT_FOUND', '... then GET /jobs is 404');
}
$env->invariants_ok($_) for qw(alpha beta);

# ---------------------------------------------------------------- the registry and the app's queue, two steps
# sd:jobapps is one key, in a slot of its own on a cluster: a gateway
# registers the app there, then queues the job in the app's slot; a
# runner drops an app whose queue is empty only under the stamp it saw,
# after writing that stamp as the app's gone mark (redis/job_apps.lua).
if (my $c = $env->cluster) {
    isnt($c->master_of_key('sd:jobapps'), $c->master_of_key('sd:{alpha}:seq'),
         'cluster: the registry and alpha are on different masters (the jobs above crossed them)');
}
{
    my $apps_src = do { local $/; open my $f, '<', SupportDesk::Test::repo_root() . '/redis/job_apps.lua' or die $!; <$f> };

    # a gateway that died between the two steps: an app with nothing queued
    my $old = redis_ms_now() - 60_000;
    $R->zadd('sd:jobapps', $old, 'omega');
    ok(wait_until(sub { !defined $R->zscore('sd:jobapps', 'omega') }, 10, 0.05),
       'an app registered long ago with no job queued (its gateway died between the steps) is dropped');
    is($R->get('sd:{omega}:jobgone'), $old, '... its stamp written as its gone mark first');

    # one registered just now is left for the grace period: its gateway may
    # be about to queue the job
    my $t0 = time;
    $R->zadd('sd:jobapps', redis_ms_now(), 'psi');
    sleep 2;
    my $left = defined $R->zscore('sd:jobapps', 'psi');
    SKIP: {
        skip 'the machine took too long to check it', 1 if time - $t0 > 8;
        ok($left, 'an app registered 2 s ago with nothing queued yet is left registered (10 s grace)');
    }

    # a runner marked the app gone under its stamp and is about to drop it
    # when the gateway queues the job: the queue refuses that stamp, the
    # gateway registers again and the job is queued under the new stamp
    $key{delta} = $env->create_key('delta', 'delta jobs');
    $env->seed_customers('delta', [ map { { externalId => "d$_", email => "d$_\@delta.example", name => "Delta $_" } } 1 .. 10 ]);
    my $s = redis_ms_now();
    $R->zadd('sd:jobapps', $s, 'delta');
    $R->set('sd:{delta}:jobgone', $s);
    my $n = bulk('delta', { filter => {}, set => { name => 'Delta renamed' } });
    my $now = $R->zscore('sd:jobapps', 'delta');
    ok(defined $now && $now > $s, 'the gateway registered the app again, with a stamp above the gone mark')
        or diag "stamp $s, now " . ($now // 'none');
    is($R->eval($apps_src, 1, 'sd:jobapps', 'drop', 'delta', $s), 0,
       "... so the runner's drop under the old stamp leaves it registered");
    ok(defined $R->zscore('sd:jobapps', 'delta'), '... as sd:jobapps shows');
    ok(wait_until(sub { (job('delta', $n)->{status} // '') eq 'done' }, 20, 0.02), '... and the job runs');
    is(job('delta', $n)->{updated}, 10, '... every customer of it');
    ok($env->jobs_idle('delta'), 'its last job done, the app leaves the registry at once');
    cmp_ok($R->get('sd:{delta}:jobgone'), '>', $s, '... under its new stamp, now its gone mark');
    $env->invariants_ok('delta');
}

# ---------------------------------------------------------------- externalId filter; Redis's clock
SKIP: {
    skip 'nginx runs under valgrind: no LD_PRELOAD of the clock', 1
        if SupportDesk::Test::nginx_bin() =~ m{/valgrind/};
    my $so = $env->tmp . '/skew.so';
    my $src = SupportDesk::Test::repo_root() . '/t/lib/clock-skew.c';
    is(system('cc', '-shared', '-fPIC', '-o', $so, $src, '-ldl'), 0, 'built the clock fixture') or last;

    # a gateway whose clock is an hour ahead of its Redis
    my $ahead = SupportDesk::Test->new(start_nginx => 0, redis_timeout => '5s',
                                       redis_args => ['--slowlog-log-slower-than', '0', '--slowlog-max-len', '100000'],
                                       http_conf => 'supportdesk_job_chunk_size 50;');
    my $AR = $ahead->redis;
    my $gkey = $ahead->create_key('gamma', 'ids');
    $ahead->seed_customers('gamma', [ map { { externalId => "g$_", email => "g$_\@gamma.example", name => "Gamma $_" } } 1 .. 20000 ]);
    my $max = $AR->get('sd:{gamma}:seq');

    # job 0, accepted by a gateway of the first layout (sd:jobs) and held by
    # it under a lease that runs for another minute of Redis's time
    $AR->hset('sd:{gamma}:job:0', status => 'running', lease => 'elsewhere:1:x', lease_until => do {
                  redis_ms_now($ahead) + 60000 },
              cursor => 0, max => $max, filter => '{}', set => '["n","Hijacked"]', matched => 0, updated => 0,
              c => time, u => time);
    $AR->zadd('sd:jobs', time, 'gamma/0');

    {
        local $ENV{SD_CLOCK_SKEW} = 3600;
        local $ENV{LD_PRELOAD} = $so . ($ENV{LD_PRELOAD} ? " $ENV{LD_PRELOAD}" : '');
        $ahead->start_nginx;
    }
    my $r = $ahead->api('POST', '/api/v1/customers/bulk-update', $gkey,
                        { filter => { externalId => ['g5', 'nobody', 'g19999', 'g5', 'late'] }, set => { name => 'Picked' } });
    envelope_ok($r, 202, undef, 'a job with an externalId filter');
    my ($n) = ($r->{json}{data}{jobId} // '') =~ /(\d+)$/;
    # created after the job was accepted: not part of it
    $ahead->seed_customers('gamma', [ { externalId => 'late', email => 'late@gamma.example', name => 'Late' } ]);

    sleep 2;
    my $held = { $AR->hgetall('sd:{gamma}:job:0') };
    is_deeply([ @$held{qw(lease updated)} ], ['elsewhere:1:x', 0],
              'the gateway an hour ahead leaves the job held under a live lease (Redis time) alone');
    is($AR->hget('sd:{gamma}:c:g1', 'n'), 'Gamma 1', '... nobody was changed by it');
    is($AR->hget("sd:{gamma}:job:$n", 'status'), 'queued', '... and the next job of that app waits behind it');

    # its gateway finishes it; the next one runs
    $AR->hset('sd:{gamma}:job:0', status => 'done');
    slowlog_of($ahead, 'gamma', 'reset');
    ok(wait_until(sub { ($AR->hget("sd:{gamma}:job:$n", 'status') // '') eq 'done' }, 20, 0.02), 'the externalId job is done');
    my %j = $AR->hgetall("sd:{gamma}:job:$n");
    is_deeply([ @j{qw(matched updated)} ], [2, 2], 'it matched and updated g5 and g19999: each id once, "late" not');
    is_deeply([ map { $AR->hget("sd:{gamma}:c:$_", 'n') } qw(g5 g19999 g6 late) ], ['Picked', 'Picked', 'Gamma 6', 'Late'],
              'exactly those two changed');
    my @log = @{ slowlog_of($ahead, 'gamma', 'get', 100000) };
    my @chunks = grep { uc($_->[3][0]) eq 'EVALSHA' && grep { /^sd:\{gamma\}:job:\Q$n\E$/ } @{ $_->[3] } } @log;
    my @walk = grep { ($_->[4] // '') eq '?:0' && ($_->[3][1] // '') =~ /^sd:\{gamma\}:order:\d/ } @log;
    my @reads = grep { ($_->[4] // '') eq '?:0' && uc($_->[3][0]) eq 'HMGET' && ($_->[3][1] // '') =~ /^sd:\{gamma\}:c:/ } @log;
    is(scalar @chunks, 1, 'one chunk ran it (20,000 customers walked in chunks of 50 would be 400)');
    is(scalar @walk, 0, 'it read no order bucket: the app was not walked');
    cmp_ok(scalar @reads, '<=', 8, 'it read the customers of its ids only (' . scalar(@reads) . ' reads)');
    ok(!$AR->exists("sd:{gamma}:jobids:$n"), 'its list of ids went with it');
    $ahead->invariants_ok('gamma');
}

done_testing;
