# POST /customers/bulk-update and GET /jobs/{jobId}: 202 + jobId at once,
# every filter kind, every set field (null clears), exactly the matching
# customers updated, job status and counts, every 400 / 401 / 404 / 413 /
# 415, tenant isolation, and a 20,000-customer job that finishes while the
# worker running it is SIGKILLed mid-job (another worker takes over after the
# lease): matched == updated == the matching count, nobody else touched.
# Configuration: worker_processes 2, supportdesk_redis_timeout 3s,
# supportdesk_job_chunk_size 200.
# Log allowances: the SIGKILLed worker's "worker process <pid> exited on
# signal 9" and, if it held a lock, "shared memory zone ... was locked by
# <pid>" (the killed pids only).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok fields_ok json_encode json_decode wait_until pct);

my $CHUNK = 200;
my $env = SupportDesk::Test->new(
    worker_processes => 2,
    redis_timeout    => '3s',
    http_conf        => "supportdesk_job_chunk_size $CHUNK;",
);
my $key   = $env->create_key('acme', 'bulk tests');
my $other = $env->create_key('other', 'tenant isolation');
my $R = $env->redis;
my $TS = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
my $r;

sub bulk {
    my ($body, %o) = @_;
    my $k = exists $o{key} ? $o{key} : $key;
    return $env->api('POST', '/api/v1/customers/bulk-update', $k, $body, %o);
}
sub job_get { my ($id, $k) = @_; $env->api('GET', '/api/v1/jobs/' . pct($id), $k // $key) }
sub refused { $env->refused(@_) }
# accepts a job: (jobId, response)
sub accept_job {
    my ($name, $body, $k) = @_;
    my $t = time;
    my $res = bulk($body, key => $k // $key);
    my $took = time - $t;
    envelope_ok($res, 202, undef, "$name: 202") or return (undef, $res);
    my $id = $res->{json}{data}{jobId} // '';
    like($id, qr/^job_\d+$/, "$name: jobId job_<n>");
    is_deeply([keys %{ $res->{json}{data} }], ['jobId'], "$name: data is {jobId}");
    cmp_ok($took, '<', 1, "$name: answered at once");
    return ($id, $res);
}
# polls GET /jobs/{id} until done or failed; returns the last job object
sub wait_job {
    my ($id, $k, $timeout) = @_;
    my ($job, %seen);
    wait_until(sub {
        my $x = job_get($id, $k);
        return 0 unless $x->{status} == 200;
        $job = $x->{json}{data}{job};
        $seen{ $job->{status} // '?' }++;
        return ($job->{status} // '') =~ /^(done|failed)$/;
    }, $timeout // 30, 0.1);
    $job //= {};
    $job->{_seen} = [sort keys %seen];
    return $job;
}
sub job_ok {
    my ($name, $job, $id, $matched) = @_;
    is($job->{status}, 'done', "$name: job done") or diag json_encode($job);
    is($job->{id}, $id, "$name: job id");
    is($job->{matched}, $matched, "$name: matched $matched");
    is($job->{updated}, $matched, "$name: updated $matched");
    like($job->{createdAt} // '', $TS, "$name: createdAt");
    like($job->{updatedAt} // '', $TS, "$name: updatedAt");
    ok(($job->{createdAt} // '') le ($job->{updatedAt} // ''), "$name: createdAt <= updatedAt");
    is_deeply([sort grep { !/^_/ } keys %$job], [sort qw(id status matched updated createdAt updatedAt)],
              "$name: the job has the documented fields");
    my ($n) = ($id // '') =~ /(\d+)$/;
    my ($app) = $_[4] // 'acme';
    if (defined $n) {
        my %h = $R->hgetall("sd:{$app}:job:$n");
        is($h{status}, 'done', "$name: Redis job hash status done");
        is($h{matched}, $matched, "$name: Redis job hash matched");
        is($h{updated}, $matched, "$name: Redis job hash updated");
        ok(!defined $R->zscore("sd:{$app}:jobq", $n), "$name: no longer in its app's queue (sd:{app}:jobq)");
        cmp_ok($R->ttl("sd:{$app}:job:$n"), '>', 0, "$name: the finished job expires");
    }
}
sub all_hashes { my $app = shift // 'acme'; my ($by) = $env->customers_of($app); $by }
# every customer in @$changed has the fields in %$want (undef = absent) and
# the rest as before; every other customer is exactly as before
sub changed_ok {
    my ($name, $before, $changed, $want, $app) = @_;
    my $after = all_hashes($app);
    my %ch = map { $_ => 1 } @$changed;
    my @p;
    for my $ext (sort keys %$before) {
        my ($b, $a) = ($before->{$ext}, $after->{$ext});
        if (!$a) { push @p, "$ext vanished"; next }
        if ($ch{$ext}) {
            # a change moves the version (the ETag) on by exactly one
            my %exp = (%$b, u => $a->{u}, v => (($b->{v} // 0) + 1) . "");
            for my $f (keys %$want) {
                if (defined $want->{$f}) { $exp{$f} = $want->{$f} } else { delete $exp{$f} }
            }
            my %got = %$a;
            if (exists $want->{m} && defined $want->{m}) {
                $got{m} = json_decode($got{m} // '');
                $exp{m} = json_decode($exp{m});
            }
            push @p, "$ext: " . json_encode(\%got) . ' want ' . json_encode(\%exp) unless _same(\%got, \%exp);
            push @p, "$ext: u went back" if ($a->{u} // 0) < ($b->{u} // 0);
        } else {
            push @p, "$ext changed: " . json_encode($a) . ' was ' . json_encode($b) unless _same($a, $b);
        }
    }
    ok(!@p, "$name: exactly the matching customers changed, as set") or diag join "\n", @p[0 .. ($#p < 9 ? $#p : 9)];
}
sub _same { json_encode($_[0]) eq json_encode($_[1]) }

# ---------------------------------------------------------------- small jobs
my @small = (
    [a1 => { email => 'ann@alpha.com', name => 'Ann Alpha', phone => '111', metadata => { plan => 'pro', seats => 5 } }],
    [a2 => { email => 'bob@alpha.com', name => 'Bob Alpha', metadata => { plan => 'pro', seats => 6, active => JSON::PP::true } }],
    [a3 => { email => 'cid@beta.com',  name => 'Cid Beta', avatarUrl => 'https://a.io/c.png', phone => '333', metadata => { plan => 'free' } }],
    [a4 => { email => 'dee@BETA.com',  name => 'Dee Beta', phone => '444' }],
    [a5 => { email => 'eve@gamma.com', name => 'Eve Gamma', metadata => { plan => 'pro', seats => '5' } }],
);
for my $c (@small) {
    envelope_ok($env->api('PATCH', $c->[0], $key, $c->[1]), 200, undef, "setup $c->[0]") or BAIL_OUT('setup');
}
envelope_ok($env->api('PATCH', 'a1', $other, { email => 'ann@alpha.com', name => 'Other Ann', metadata => { plan => 'pro' } }),
            200, undef, 'setup other a1');

my @acme_jobs;
my @cases = (
    ['metadata.plan=pro, set name', { 'metadata.plan' => 'pro' }, { name => 'Pro Customer' },
     [qw(a1 a2 a5)], { n => 'Pro Customer' }],
    ['email substring (case-insensitive), null clears phone and avatarUrl', { email => 'BETA' },
     { phone => undef, avatarUrl => undef }, [qw(a3 a4)], { p => undef, a => undef }],
    ['externalId list, set metadata', { externalId => ['a1', 'a4', 'nobody'] }, { metadata => { tier => 'x', n => 1 } },
     [qw(a1 a4)], { m => '{"n":1,"tier":"x"}' }],
    ['name + metadata number 5 matches the string "5"', { name => 'pro cust', 'metadata.seats' => 5 }, { phone => '+1 (555) 000' },
     [qw(a5)], { p => '+1 (555) 000' }],
    ['metadata boolean', { 'metadata.active' => JSON::PP::true }, { avatarUrl => 'https://b.io/x.png' },
     [qw(a2)], { a => 'https://b.io/x.png' }],
    ['{} matches every customer of the app, several fields, null clears metadata', {},
     { name => '  Everyone  ', metadata => undef, phone => '999' }, [qw(a1 a2 a3 a4 a5)], { n => 'Everyone', m => undef, p => '999' }],
    ['no match', { name => 'nobody at all' }, { name => 'X' }, [], {}],
);
for my $c (@cases) {
    my ($name, $filter, $set, $match, $want) = @$c;
    my $before = all_hashes();
    my $other_before = $env->snapshot('sd:{other}:c:*');
    my ($id) = accept_job($name, { filter => $filter, set => $set });
    next unless $id;
    push @acme_jobs, $id;
    my $job = wait_job($id);
    job_ok($name, $job, $id, scalar @$match);
    changed_ok($name, $before, $match, $want);
    is_deeply($env->snapshot('sd:{other}:c:*'), $other_before, "$name: the other app's customers untouched");
}
$r = job_get($acme_jobs[0]);
envelope_ok($r, 200, undef, 'GET /jobs/{id} of a finished job');
is_deeply([keys %{ $r->{json}{data} }], ['job'], 'data is {job}');
$env->invariants_ok('acme');
$env->invariants_ok('other');

# ---------------------------------------------------------------- errors
my $okset = { name => 'X' };
my $IDS = [ 'filter.externalId' => 'must be an array of 1 to 1000 externalIds' ];
my $STR = 'must be a string';
refused('set.email', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => { email => 'x@y.com' } }) },
        ['set.email' => 'cannot be changed by a bulk update']);
refused('empty set', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => {} }) }, [set => 'must change at least one field']);
refused('no set', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {} }) }, [set => 'is required']);
refused('no filter', 400, 'VALIDATION_ERROR', sub { bulk({ set => $okset }) }, [filter => 'is required']);
refused('set is an array', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => ['name'] }) }, [set => 'must be an object']);
refused('unknown set field', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => { foo => 1 } }) },
        ['set.foo' => 'is not a known field']);
refused('read-only set field', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => { createdAt => 1 } }) },
        ['set.createdAt' => 'is read-only']);
refused('bad set.phone', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => { phone => 'abc' } }) },
        ['set.phone' => 'must contain only digits, spaces and + - ( ) .']);
refused('empty set.name', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => { name => '  ' } }) },
        ['set.name' => 'must not be empty']);
refused('null set.name', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => { name => undef } }) },
        ['set.name' => 'cannot be null']);
refused('bad set.avatarUrl', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => { avatarUrl => 'ftp://x.io/a' } }) },
        ['set.avatarUrl' => 'must be an absolute http or https URL']);
refused('set.metadata array', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => { metadata => [1] } }) },
        ['set.metadata' => 'must be an object']);
refused('unknown filter', 400, 'VALIDATION_ERROR', sub { bulk({ filter => { foo => 'x' }, set => $okset }) },
        ['filter.foo' => 'is not a known filter']);
refused('filter.email not a string', 400, 'VALIDATION_ERROR', sub { bulk({ filter => { email => 5 }, set => $okset }) },
        ['filter.email' => $STR]);
refused('filter.name not a string', 400, 'VALIDATION_ERROR', sub { bulk({ filter => { name => ['a'] }, set => $okset }) },
        ['filter.name' => $STR]);
refused('filter.externalId a string', 400, 'VALIDATION_ERROR', sub { bulk({ filter => { externalId => 'a1' }, set => $okset }) }, $IDS);
refused('filter.externalId empty', 400, 'VALIDATION_ERROR', sub { bulk({ filter => { externalId => [] }, set => $okset }) }, $IDS);
refused('filter.externalId 1001 ids', 400, 'VALIDATION_ERROR', sub {
    bulk({ filter => { externalId => [map { "x$_" } 1 .. 1001] }, set => $okset }) }, $IDS);
refused('filter.externalId with a number', 400, 'VALIDATION_ERROR', sub { bulk({ filter => { externalId => ['a1', 5] }, set => $okset }) },
        ['filter.externalId' => 'must hold strings only']);
refused('filter.metadata.x an object', 400, 'VALIDATION_ERROR', sub { bulk({ filter => { 'metadata.x' => { a => 1 } }, set => $okset }) },
        ['filter.metadata.x' => 'must be a string, number or boolean']);
refused('filter not an object', 400, 'VALIDATION_ERROR', sub { bulk({ filter => [1], set => $okset }) }, [filter => 'must be an object']);
refused('unknown top-level key', 400, 'VALIDATION_ERROR', sub { bulk({ filter => {}, set => $okset, dryRun => 1 }) },
        [dryRun => 'is not a known field']);
refused('filter and set both wrong: every violation, the filter first', 400, 'VALIDATION_ERROR',
        sub { bulk({ filter => { foo => 1 }, set => { email => 'a@b.co', phone => 'x' } }) },
        ['filter.foo' => 'is not a known filter'], ['set.email' => 'cannot be changed by a bulk update'],
        ['set.phone' => 'must contain only digits, spaces and + - ( ) .'], { ordered => 1 });
refused('malformed JSON', 400, 'INVALID_JSON', sub { bulk('{"filter":') }, { message => 'body is not valid JSON' });
refused('body is an array', 400, 'INVALID_JSON', sub { bulk('[]') }, { message => 'body must be a JSON object' });
refused('text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE', sub { bulk({ filter => {}, set => $okset }, headers => { 'Content-Type' => 'text/plain' }) });
refused('no key', 401, 'UNAUTHORIZED', sub { bulk({ filter => {}, set => $okset }, key => undef) });
refused('unknown key', 401, 'UNAUTHORIZED', sub { bulk({ filter => {}, set => $okset }, key => 'sdk_nope') });
refused('body over 64k', 413, 'PAYLOAD_TOO_LARGE', sub {
    bulk(json_encode({ filter => {}, set => $okset }) . (' ' x 65536)) },
    { message => 'body is over the limit of 65536 bytes' });

my $NO_JOB = { message => 'no such job in this app' };
refused('GET /jobs/job_999999', 404, 'NOT_FOUND', sub { job_get('job_999999') }, $NO_JOB);
refused('GET /jobs/job_0', 404, 'NOT_FOUND', sub { job_get('job_0') }, $NO_JOB);
refused('GET /jobs/whatever', 404, 'NOT_FOUND', sub { job_get('whatever') }, $NO_JOB);
refused('GET /jobs/{id} without a key', 401, 'UNAUTHORIZED', sub { $env->request('GET', "/api/v1/jobs/$acme_jobs[0]") });
refused('GET /jobs/{id} with an unknown key', 401, 'UNAUTHORIZED', sub { job_get($acme_jobs[0], 'sdk_nope') });

# ---------------------------------------------------------------- tenant isolation
{
    ok($env->jobs_idle('acme'), "acme's jobs done, acme out of the registry of apps with work");
    my $acme_before = $env->snapshot('sd:{acme}:*');
    my ($oid) = accept_job('other app, filter {}', { filter => {}, set => { name => 'Other Renamed' } }, $other);
    my $ojob = wait_job($oid, $other);
    job_ok('other app job', $ojob, $oid, 1, 'other');
    is($R->hget('sd:{other}:c:a1', 'n'), 'Other Renamed', "other's customer updated");
    is_deeply($env->snapshot('sd:{acme}:*'), $acme_before, "acme's keys untouched by the other app's job");
    # job numbers are per app (sd:{app}:jobseq): the other app's first job
    # is job_1, like acme's first; each app reads its own under that id
    is($oid, 'job_1', "the other app's first job is job_1");
    is($acme_jobs[0], 'job_1', "acme's first job is job_1");
    my $mine = job_get($oid)->{json}{data}{job} // {};
    is_deeply([$mine->{id}, $mine->{matched}], [$oid, scalar @{ $cases[0][3] }],
              "acme's $oid is acme's own job, not the other app's");
    for my $id (grep { $_ ne $oid } @acme_jobs) {
        refused("the other app cannot see acme's $id", 404, 'NOT_FOUND', sub { job_get($id, $other) },
                { message => 'no such job in this app' });
    }
    refused("acme cannot see the other app's job_2 either (it has none)", 404, 'NOT_FOUND',
            sub { job_get('job_' . (@acme_jobs + 1)) }, { message => 'no such job in this app' });
}

# ---------------------------------------------------------------- 20,000 customers, a worker killed mid-job
my $bkey = $env->create_key('big', 'big job');
my $N = 20000;
my @gold = grep { $_ % 3 == 0 } 1 .. $N;
{
    my $t = time;
    my $bad = 0;
    for my $b (0 .. $N / 1000 - 1) {
        my @items = map { { externalId => "g$_", email => "g$_\@big.example", name => "Big $_",
                            metadata => { tier => ($_ % 3 == 0 ? 'gold' : 'basic'), n => $_ } } }
                    $b * 1000 + 1 .. $b * 1000 + 1000;
        my $x = $env->api('PATCH', '/api/v1/customers', $bkey, { customers => \@items }, timeout => 60);
        my $res = eval { $x->{json}{data}{results} } || [];
        my $okn = grep { ref $_ eq 'HASH' && $_->{success} } @$res;
        if ($x->{status} != 200 || $okn != 1000) {
            $bad++;
            diag "seed batch $b: $x->{status} $okn ok " . substr($x->{body} // '', 0, 300);
            last;
        }
    }
    ok(!$bad, sprintf('seeded %d customers with 20 batch upserts of 1000 (%.1fs)', $N, time - $t));
    if ($bad) {    # go on with the job part anyway
        $R->del($_) for SupportDesk::Invariants::scan_keys($R, 'sd:{big}:*');
        $env->seed_customers('big', [ map { { externalId => "g$_", email => "g$_\@big.example", name => "Big $_",
            metadata => { tier => ($_ % 3 == 0 ? 'gold' : 'basic'), n => $_ } } } 1 .. $N ]);
        diag 'seeded directly in Redis instead';
    }
}
is($env->customer_count('big'), $N, "$N customers in the big app");
my $before = all_hashes('big');
my @workers = $env->worker_pids;
is(scalar @workers, 2, 'two workers');

# This part SIGKILLs a worker on purpose: the master logs its death as an
# [alert] ("worker process <pid> exited on signal 9"), and if the worker
# held a shared memory lock (the key cache) at that instant, the master
# logs "shared memory zone ... was locked by <pid>" as it frees the lock.
# Both are allowed for the killed pids only; the second may not happen.
sub allow_killed {
    my ($pid) = @_;
    $env->allow_log(qr/\[alert\] \d+#\d+: worker process $pid exited on signal 9$/);
    $env->allow_log(qr/\[alert\] \d+#\d+: shared memory zone "[^"]*" was locked by $pid$/, maybe => 1);
}

my ($bid) = accept_job('big job', { filter => { 'metadata.tier' => 'gold' },
                                    set => { name => 'Gold Member', phone => '+1 555 0000' } }, $bkey);
SKIP: {
    skip 'no big job', 12 unless $bid;
    # customers created after the job was accepted are not part of it
    for my $i (1 .. 3) {
        envelope_ok($env->api('PATCH', "late_$i", $bkey, { email => "late$i\@big.example", name => "Late $i",
                                                            metadata => { tier => 'gold' } }),
                    200, undef, "late_$i created after the job was accepted");
    }
    my ($n) = $bid =~ /(\d+)$/;
    my $jk = "sd:{big}:job:$n";
    my %at_kill;
    my $running = wait_until(sub {
        my %h = $R->hgetall($jk);
        if (($h{status} // '') eq 'running' && ($h{updated} // 0) > 0) { %at_kill = %h; return 1 }
        return -1 if ($h{status} // '') eq 'done';
        return 0;
    }, 30, 0.002);
    ok($running && $running != -1, 'saw the job running with updated > 0 before it finished')
        or diag 'job: ' . json_encode({ $R->hgetall($jk) });
    my @killed;
    if ($running && $running != -1) {
        my ($holder) = ($at_kill{lease} // '') =~ /^(\d+):/;
        my %w = map { $_ => 1 } $env->worker_pids;
        if ($holder && $w{$holder}) {
            kill 'KILL', $holder;
            push @killed, $holder;
            allow_killed($holder);
            diag "SIGKILLed worker $holder (the lease holder) at updated=$at_kill{updated}";
        } else {
            # lease holder unknown: kill the workers one after the other, so
            # that the one running the job dies
            for my $pid (@workers) {
                my %h = $R->hgetall($jk);
                last if ($h{status} // '') eq 'done';
                kill 'KILL', $pid;
                push @killed, $pid;
                allow_killed($pid);
                diag "SIGKILLed worker $pid at updated=" . ($h{updated} // '?');
                my $u = $h{updated} // 0;
                wait_until(sub { my %x = $R->hgetall($jk); ($x{updated} // 0) > $u || ($x{status} // '') eq 'done' }, 15, 0.01);
            }
        }
        cmp_ok($at_kill{updated}, '<', scalar @gold, 'the worker died mid-job');
    }
    my $t = time;
    my $job = wait_job($bid, $bkey, 60);
    diag sprintf 'job finished %.1fs after the kill; statuses seen: %s', time - $t, join(',', @{ $job->{_seen} || [] });
    job_ok('big job', $job, $bid, scalar @gold, 'big');
    my @now = $env->worker_pids;
    my %old = map { $_ => 1 } @killed;
    ok(@killed && !grep({ $old{$_} } @now) && @now == 2, 'the killed worker was replaced') or diag "workers now @now";
    my $after_late = all_hashes('big');
    is_deeply([map { $after_late->{"late_$_"}{n} } 1 .. 3], ['Late 1', 'Late 2', 'Late 3'],
              'customers created after acceptance are not updated');
    changed_ok('big job', $before, [map { "g$_" } @gold], { n => 'Gold Member', p => '+1 555 0000' }, 'big');
    my $log = $env->nginx_error_log;
    my @logged = grep { $log =~ /worker process $_ exited on signal 9$/m } @killed;
    is_deeply(\@logged, \@killed, 'nginx logged the death of each killed worker (' . join(' ', @killed) . ')');
    # any other [alert]/[crit]/[emerg] fails the harness's log check
}
$env->invariants_ok('big');
done_testing;
