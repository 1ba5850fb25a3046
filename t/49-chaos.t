# Chaos (issue 5), run by `make chaos` (SD_CHAOS=1; skipped by `make test`).
#
# While wrk drives a mixed load (GET, update, create, note, list,
# notification settings) at two nginx workers, Redis is SIGKILLed and
# restarted (AOF, appendfsync always: an acknowledged write survives),
# paused (SIGSTOP for longer than supportdesk_redis_timeout, then SIGCONT),
# and made to drop every client connection (CLIENT KILL); between faults,
# clients abort mid-request and a second client creates, annotates and
# deletes customers.  Then a soak of CHAOS_SOAK requests (1,000,000) with
# worker RSS sampled.  Asserted afterwards:
#   - no worker died (no "exited on signal" in the error log);
#   - every answer was a 2xx or an envelope 503/504, nothing else, no
#     malformed body, no socket error on wrk's side;
#   - after each fault, service is back (20 consecutive 200s, so every
#     worker) within a second of Redis answering, without a reload;
#   - worker RSS stable over the soak;
#   - redis/sd-check finds the app consistent; no acknowledged create or
#     delete lost;
#   - the change feed of the chaos phase holds exactly the changes in Redis:
#     each customer's events carry its versions 1, 2, 3... in order up to
#     the version it has, its notes and settings are those of its events,
#     every acknowledged change has its event, and the events beyond the
#     acknowledged changes are no more than the answers 503/504.
# Environment: CHAOS_SOAK (requests, 1000000), CHAOS_ROUNDS (fault rounds, 3),
# CHAOS_CONNS (wrk connections, 32), CHAOS_RSS_MB (allowed RSS growth, 8).
# Configuration: worker_processes 2, supportdesk_redis_timeout 1s,
# error_log level warn, supportdesk_events_max_count 100000000 (nothing
# trimmed); Redis with --appendonly yes --appendfsync always.
use strict;
use warnings;
use Test::More;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok json_encode single_redis_only);

plan skip_all => 'the chaos run is `make chaos` (SD_CHAOS=1)' unless $ENV{SD_CHAOS};
plan skip_all => 'wrk not found' unless grep { -x "$_/wrk" } split /:/, $ENV{PATH};
single_redis_only('its faults (kill, pause, restart) are the one Redis\'s');

my $SOAK   = $ENV{CHAOS_SOAK} // 1_000_000;
my $ROUNDS = $ENV{CHAOS_ROUNDS} // 3;
my $CONNS  = $ENV{CHAOS_CONNS} // 32;
my $RSS_MB = $ENV{CHAOS_RSS_MB} // 8;
my $SEEDED = 2000;
my $APP    = 'chaos';

my $env = SupportDesk::Test->new(
    worker_processes => 2,
    redis_timeout    => '1s',
    error_log_level  => 'warn',
    http_conf        => 'supportdesk_events_max_count 100000000;',
    redis_args       => ['--appendonly', 'yes', '--appendfsync', 'always'],
);
my $key = $env->create_key($APP, 'chaos');
my $CHECK = SupportDesk::Test::repo_root() . '/redis/sd-check';
my $tmp = $env->tmp;
my $port = $env->port;

$env->seed_customers($APP, [ map { {
    externalId => sprintf('cust-%06d', $_), email => sprintf('cust%06d@chaos.example', $_),
    name => "Customer $_" } } 0 .. $SEEDED - 1 ]);
is($env->redis->get("sd:{$APP}:seq"), $SEEDED, "seeded $SEEDED customers");

# ---------------------------------------------------------------- wrk
my $lua = <<'LUA';
-- t/49-chaos.t: mixed load; every answer must be a 2xx envelope or an
-- envelope 503/504
local threads = {}
function setup(thread)
   thread:set("tid", #threads)
   threads[#threads + 1] = thread
end

local key, seeded, nonce = os.getenv("CHAOS_KEY"), tonumber(os.getenv("CHAOS_SEEDED")), os.getenv("CHAOS_NONCE")
local n = 0
ok, s503, s504, bad, created, updated, noted = 0, 0, 0, 0, 0, 0, 0
local gh, bh

function init(args)
   math.randomseed(tonumber(nonce) + tid * 7919)
   gh = { ["X-API-Key"] = key }
   bh = { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }
end

local function seeded_id() return string.format("cust-%06d", math.random(0, seeded - 1)) end

function request()
   local r = math.random(100)
   n = n + 1
   if r <= 40 then
      return wrk.format("GET", "/api/v1/customers/" .. seeded_id(), gh)
   elseif r <= 65 then
      return wrk.format("PATCH", "/api/v1/customers/" .. seeded_id(), bh,
         '{"name":"Updated ' .. tid .. '-' .. n .. '","metadata":{"v":' .. n .. '}}')
   elseif r <= 80 then
      local id = "new-" .. nonce .. "-" .. tid .. "-" .. n
      return wrk.format("PATCH", "/api/v1/customers/" .. id, bh,
         '{"email":"' .. id .. '@chaos.example","name":"New ' .. n .. '"}')
   elseif r <= 90 then
      return wrk.format("POST", "/api/v1/customers/" .. seeded_id() .. "/notes", bh,
         '{"note":"chaos note ' .. n .. '"}')
   elseif r <= 95 then
      return wrk.format("GET", "/api/v1/customers?limit=20", gh)
   else
      return wrk.format("PATCH", "/api/v1/customers/" .. seeded_id() .. "/notifications", bh,
         '{"newTicket":' .. (n % 2 == 0 and "true" or "false") .. '}')
   end
end

function response(status, headers, body)
   if status >= 200 and status < 300 and body:sub(1, 15) == '{"success":true' then
      ok = ok + 1
      -- a name never sent before: every update acknowledged is a change
      if body:find('"wasCreated":true', 1, true) then created = created + 1
      elseif body:find('"wasCreated":false', 1, true) then updated = updated + 1
      elseif body:find('"note":{', 1, true) then noted = noted + 1 end
   elseif status == 503 and body:sub(1, 16) == '{"success":false'
          and body:find('"SERVICE_UNAVAILABLE"', 1, true) then
      s503 = s503 + 1
   elseif status == 504 and body:sub(1, 16) == '{"success":false'
          and body:find('"GATEWAY_TIMEOUT"', 1, true) then
      s504 = s504 + 1
   else
      bad = bad + 1
      if bad <= 5 then io.stderr:write("bad response: ", status, " ", body:sub(1, 300), "\n") end
   end
end

function done(summary, latency, requests)
   local t = { ok = 0, s503 = 0, s504 = 0, bad = 0, created = 0, updated = 0, noted = 0 }
   for _, th in ipairs(threads) do
      for k in pairs(t) do t[k] = t[k] + th:get(k) end
   end
   local e = summary.errors
   io.write(string.format("CHAOS requests=%d ok=%d s503=%d s504=%d bad=%d created=%d "
      .. "updated=%d noted=%d connect=%d read=%d write=%d timeout=%d status=%d p99_us=%d\n",
      summary.requests, t.ok, t.s503, t.s504, t.bad, t.created, t.updated, t.noted,
      e.connect, e.read, e.write, e.timeout, e.status, latency:percentile(99)))
end
LUA
open my $fh, '>', "$tmp/chaos.lua" or die $!;
print $fh $lua;
close $fh;

my $nonce = 100000 + int rand 800000;
my %total = map { $_ => 0 } qw(requests ok s503 s504 bad created updated noted connect read write timeout
                                status);

# starts wrk in the background; returns its pid (output in $out)
sub wrk_start {
    my ($secs, $out) = @_;
    $nonce++;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', $out or POSIX::_exit(1);
        open STDERR, '>&', \*STDOUT;
        $ENV{CHAOS_KEY} = $key;
        $ENV{CHAOS_SEEDED} = $SEEDED;
        $ENV{CHAOS_NONCE} = $nonce;
        { no warnings 'exec';
          exec 'wrk', '-t2', "-c$CONNS", "-d${secs}s", '--timeout', '5s', '-s', "$tmp/chaos.lua",
              "http://127.0.0.1:$port/"; }
        POSIX::_exit(127);
    }
    return $pid;
}

sub wrk_finish {
    my ($pid, $out, $name) = @_;
    waitpid($pid, 0);
    my $text = do { local (@ARGV, $/) = ($out); <> } // '';
    my ($line) = $text =~ /^(CHAOS .*)$/m;
    ok($line, "$name: wrk ran") or diag $text;
    my %r = ($line // '') =~ /(\w+)=(\d+)/g;
    $total{$_} += $r{$_} // 0 for keys %total;
    diag "$name: $line" if $line;
    diag $1 while $text =~ /^(bad response: .*)$/mg;
    return \%r;
}

# service is back: 20 consecutive 200s (both workers); seconds from $t0
sub recovery {
    my ($t0) = @_;
    my $streak = 0;
    my $first;
    while (time - $t0 < 10) {
        my $r = $env->api('GET', 'cust-000001', $key, undef, timeout => 3);
        if ($r->{status} == 200) {
            $first //= time;
            return $first - $t0 if ++$streak >= 20;
        } else {
            $streak = 0;
            undef $first;
            sleep 0.01;
        }
    }
    return undef;
}

# clients that leave mid-request: half a request line, headers without the
# body, a whole request closed before the answer
sub aborts {
    my @reqs;
    for my $i (1 .. 40) {
        my $id = sprintf('cust-%06d', int rand $SEEDED);
        my $full = $env->http_bytes('PATCH', "/api/v1/customers/$id",
            headers => { 'X-API-Key' => $key }, body => { name => "Abort $i" });
        push @reqs, substr($full, 0, 10 + int rand(length($full) - 10));
        push @reqs, $env->http_bytes('GET', "/api/v1/customers/$id", headers => { 'X-API-Key' => $key });
    }
    $env->parallel(\@reqs, close_after => 0.001, timeout => 2);
    return scalar @reqs;
}

# a second client: create, note, delete; every answer 2xx/503/504 (a delete
# may also find nothing when its create was not acknowledged)
my %side = (created => 0, deleted => 0, noted => 0, unknown => 0, bad => 0, n => 0);
sub side_client {
    my ($rounds) = @_;
    for (1 .. $rounds) {
        my $id = 'side-' . $nonce . '-' . ++$side{n};
        my $c = $env->api('PATCH', $id, $key, { email => "$id\@chaos.example", name => 'Side' }, timeout => 5);
        my $made = $c->{status} == 200;
        $side{created}++ if $made;
        my $n = $env->api('POST', "/api/v1/customers/$id/notes", $key, { note => 'side note' }, timeout => 5);
        $side{noted}++ if $n->{status} == 201;
        my $d = $env->api('DELETE', $id, $key, undef, timeout => 5);
        $side{deleted}++ if $d->{status} == 200;
        # a delete answered 503/504 may have been applied: resolved at the end
        push @{ $side{unsure} }, [$id, $made] if $d->{status} == 503 || $d->{status} == 504;
        # a create answered 503/504 may still have been applied: then its
        # delete is a 200 that was not counted as created
        $side{created}++ if !$made && $d->{status} == 200;
        for my $r ($c, $n, $d) {
            my $s = $r->{status};
            $side{unknown}++ if $s == 503 || $s == 504;
            my $fine = $s == 200 || $s == 201 || $s == 503 || $s == 504
                || ($s == 404 && !$made && $r != $c);
            if (!$fine || !ref $r->{json}) {
                $side{bad}++;
                diag "side client: $s $r->{body}" if $side{bad} <= 5;
            }
        }
    }
}

# ---------------------------------------------------------------- chaos phase
my $chaos_secs = 12 * $ROUNDS + 6;
my $out = "$tmp/wrk-chaos.out";
my $wrk = wrk_start($chaos_secs, $out);
my (@recover, %faults);
my $aborted = 0;
sleep 3;
for my $round (1 .. $ROUNDS) {
    # 1. SIGKILL, restart (the AOF brings every acknowledged write back)
    $env->kill_redis;
    $faults{kill}++;
    side_client(3);
    sleep 0.5;
    $env->start_redis;
    # the harness sees Redis up at its first answer, a "-LOADING" while it
    # replays the AOF: it returns when it answers PONG
    my $tl = time;
    SupportDesk::Test::wait_until(sub {
        my $p = eval { $env->redis->ping };
        delete $env->{redis} unless defined $p;
        return ($p // '') eq 'PONG';
    }, 60, 0.01);
    diag sprintf 'round %d: Redis loaded its AOF in %.3f s', $round, time - $tl;
    my $t = recovery(time);
    push @recover, ['redis killed and restarted', $t];

    $aborted += aborts();

    # 2. paused longer than supportdesk_redis_timeout
    $env->pause_redis;
    $faults{pause}++;
    sleep 2.5;
    $env->resume_redis;
    $t = recovery(time);
    push @recover, ['redis paused 2.5 s', $t];

    side_client(5);

    # 3. every client connection closed by Redis
    system("redis-cli -p ${\ $env->redis_port } CLIENT KILL TYPE normal >/dev/null");
    $faults{client_kill}++;
    delete $env->{redis};
    $t = recovery(time);
    push @recover, ['CLIENT KILL', $t];

    $aborted += aborts();
    side_client(5);
    sleep 1;
}
my $chaos = wrk_finish($wrk, $out, 'chaos phase');
for my $r (@recover) {
    ok(defined $r->[1] && $r->[1] < 1, sprintf '%s: service back in %s s', $r->[0],
        defined $r->[1] ? sprintf('%.3f', $r->[1]) : 'never');
}

# ---------------------------------------------------------------- the feed
# Read back whole (a script projects each event to the fields checked, so
# that a few hundred thousand events read in seconds), then held against
# what Redis has and against the answers the clients had.
{
    my $R = $env->redis;
    my $stream = "sd:{$APP}:events";
    my $project = <<'LUA';
local out = {}
for i, e in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', 10000)) do
    local f = {}
    for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
    out[i] = table.concat({e[1], f.t or '', f.x or '', f.v or '', f.note or '',
                           f.newTicket or '1', f.newComment or '1',
                           f.ticketReassigned or '1'}, '\t')
end
return out
LUA
    my (%ver, %gone, %notes, %notif, %types, @problems);
    my $problem = sub { push @problems, $_[0] };
    my ($from, $events) = ('-', 0);
    while (1) {
        my $chunk = $R->eval($project, 1, $stream, $from);
        last unless @$chunk;
        for my $line (@$chunk) {
            my ($id, $t, $x, $v, $note, @settings) = split /\t/, $line, -1;
            $events++;
            $types{$t}++;
            if ($t eq 'customer.created') {
                $problem->("$id: $x created again") if exists $ver{$x};
                $problem->("$id: $x created at version $v") if $v ne '1';
                $ver{$x} = $v;
            } elsif ($t eq 'customer.updated') {
                my $want = ($ver{$x} // 0) + 1;
                $problem->("$id: $x updated to version $v, after $want - 1") if $v ne $want;
                $problem->("$id: $x updated after its deletion") if $gone{$x};
                $ver{$x} = $v;
            } elsif ($t eq 'customer.deleted') {
                $problem->("$id: $x deleted twice") if $gone{$x}++;
            } elsif ($t eq 'note.created') {
                $problem->("$id: note $note of $x created twice") if $notes{$x}{$note}++;
            } elsif ($t eq 'notifications.updated') {
                my $s = join ',', @settings;
                $problem->("$id: notifications of $x updated to what they were ($s)")
                    if ($notif{$x} // '1,1,1') eq $s;
                $notif{$x} = $s;
            } else {
                $problem->("$id: an event of type '$t' from a load that makes none");
            }
            $from = "($id";
        }
    }
    is($events, $R->hget("sd:{$APP}:eventseq", 'n'), "the feed kept every one of its $events events");

    # each customer's version and existence against its events
    my @ids = map { substr $_, length "sd:{$APP}:c:" } SupportDesk::Invariants::scan_keys($R, "sd:{$APP}:c:*");
    my %all = map { $_ => 1 } @ids, keys %ver;
    my @all = sort keys %all;
    my $versions = <<'LUA';
local out = {}
for i, k in ipairs(KEYS) do
    out[i] = redis.call('EXISTS', k) == 1 and (redis.call('HGET', k, 'v') or '0') or '-'
end
return out
LUA
    while (my @part = splice @all, 0, 1000) {
        my $got = $R->eval($versions, scalar @part, (map { "sd:{$APP}:c:$_" } @part));
        for my $i (0 .. $#part) {
            my ($x, $v) = ($part[$i], $got->[$i]);
            if ($gone{$x}) {
                $problem->("$x deleted in the feed, in Redis at version $v") if $v ne '-';
            } elsif ($v eq '-') {
                $problem->("$x created in the feed, not in Redis");
            } elsif ($v ne ($ver{$x} // 0)) {
                $problem->("$x at version $v in Redis, " . ($ver{$x} // 0) . ' in the feed');
            }
        }
    }
    # notes and notification settings of every customer still there
    for my $x (grep { !$gone{$_} } sort keys %{ { map { $_ => 1 } keys %notes, keys %notif,
                                                  map { sprintf 'cust-%06d', $_ } 0 .. $SEEDED - 1 } }) {
        my $in_redis = join ',', sort { $a <=> $b } @{ $R->zrange("sd:{$APP}:notez:$x", 0, -1) };
        my $in_feed = join ',', sort { $a <=> $b } keys %{ $notes{$x} || {} };
        $problem->("notes of $x: $in_redis in Redis, $in_feed in the feed") if $in_redis ne $in_feed;
        my %h = @{ $R->hgetall("sd:{$APP}:notif:$x") };
        my $s = join ',', map { $h{$_} // '1' } qw(newTicket newComment ticketReassigned);
        $problem->("notifications of $x: $s in Redis, " . ($notif{$x} // '1,1,1') . ' in the feed')
            if $s ne ($notif{$x} // '1,1,1');
    }
    is(scalar @problems, 0, 'the feed holds exactly the changes Redis has, in their order')
        or diag join "\n", @problems[0 .. ($#problems < 19 ? $#problems : 19)];

    # against the answers: none acknowledged is missing, the rest is the 503/504s
    my %acked = ('customer.created' => $chaos->{created} + $side{created},
                 'customer.updated' => $chaos->{updated},
                 'customer.deleted' => $side{deleted},
                 'note.created'     => $chaos->{noted} + $side{noted});
    my $unknown = $chaos->{s503} + $chaos->{s504} + $side{unknown};
    my $extra = 0;
    for my $t (sort keys %acked) {
        my $n = $types{$t} // 0;
        cmp_ok($n, '>=', $acked{$t}, "$t: $n events, $acked{$t} acknowledged: none missing");
        $extra += $n - $acked{$t};
    }
    cmp_ok($extra, '<=', $unknown, "$extra events beyond the acknowledged changes, "
           . "no more than the $unknown answers 503/504 (whose fate the clients could not know)");
    diag sprintf 'feed of the chaos phase: %d events (%s); %d of them beyond the acknowledged changes',
        $events, join(', ', map { "$_ $types{$_}" } sort keys %types), $extra;
}

# ---------------------------------------------------------------- soak
my @rss;
sub rss_kb {
    my $sum = 0;
    for my $pid ($env->worker_pids) {
        my $st = do { local (@ARGV, $/) = ("/proc/$pid/status"); <> } // '';
        $sum += $1 if $st =~ /^VmRSS:\s+(\d+) kB/m;
    }
    return $sum;
}
my $soaked = 0;
my $soak_t0 = time;
while ($soaked < $SOAK && time - $soak_t0 < 900) {
    my $o = "$tmp/wrk-soak.out";
    my $r = wrk_finish(wrk_start(15, $o), $o, sprintf('soak (%d so far)', $soaked));
    $soaked += $r->{requests} // 0;
    last unless $r->{requests};
    push @rss, rss_kb();
}
ok($soaked >= $SOAK, "soak: $soaked requests");
diag 'worker RSS (kB, both workers) after each soak chunk: ' . join(' ', @rss);
# the first chunk warms up caches, pools, the connections' buffers
my ($base) = @rss > 1 ? $rss[1] : $rss[0];
my $growth = ($rss[-1] - $base) / 1024;
ok($growth < $RSS_MB, sprintf 'worker RSS stable over the soak: %+.1f MB from chunk 2 to the end (allowed %d)',
    $growth, $RSS_MB);

# ---------------------------------------------------------------- verdict
diag sprintf 'driven: %d requests by wrk (%d 2xx, %d 503, %d 504, %d other), %d aborted by clients, '
    . '%d side-client rounds; faults: %d kills, %d pauses, %d CLIENT KILLs',
    $total{requests}, $total{ok}, $total{s503}, $total{s504}, $total{bad}, $aborted, $side{n},
    $faults{kill} // 0, $faults{pause} // 0, $faults{client_kill} // 0;
is($total{bad}, 0, 'every wrk answer was a 2xx envelope or an envelope 503/504');
is($total{connect} + $total{read} + $total{write} + $total{timeout}, 0, 'no socket error or timeout on wrk\'s side');
is($side{bad}, 0, 'every side-client answer was expected');

my $log = $env->nginx_error_log;
unlike($log, qr/exited on signal/, 'no worker died');
my @alerts = $log =~ /^(.*\[(?:alert|emerg|crit)\].*)$/mg;
ok(!@alerts, 'no alert, crit or emerg in the error log') or diag join "\n", @alerts[0 .. ($#alerts < 9 ? $#alerts : 9)];

my $check = `'$CHECK' -p ${\ $env->redis_port } $APP 2>&1`;
is($? >> 8, 0, 'redis/sd-check: the data invariants hold') or diag $check;
diag $check;

# deletes answered 503/504: did they happen?
for my $u (@{ $side{unsure} || [] }) {
    my ($id, $made) = @$u;
    next if $env->redis->exists("sd:{$APP}:c:$id");
    $side{deleted}++ if $made;
}

my $customers = 0;
$customers++ for SupportDesk::Invariants::scan_keys($env->redis, "sd:{$APP}:c:*");
my $expected = $SEEDED + $total{created} + $side{created} - $side{deleted};
my $lost = $expected - $customers;
$lost = 0 if $lost < 0;
diag sprintf 'customers: %d in Redis, %d acknowledged (%d seeded + %d created by wrk + %d by the side client '
    . '- %d deleted); %d more (writes answered 503/504 that were applied)',
    $customers, $expected, $SEEDED, $total{created}, $side{created}, $side{deleted},
    $customers > $expected ? $customers - $expected : 0;
is($lost, 0, 'no acknowledged write lost');

ok($env->stop_nginx(timeout => 20), 'graceful stop');
unlike($env->nginx_error_log, qr/exited on signal|open socket .* left/, 'clean exit');

done_testing;
