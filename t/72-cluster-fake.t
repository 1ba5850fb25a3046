# Redis Cluster corners a real cluster rarely shows, on scripted fake
# nodes: MOVED (served, the map refreshed), a map in flight that lags a
# MOVED (the MOVED stays), ASK in the middle of a pipeline
# (ASKING right in front of the command on the target, the map unchanged),
# TRYAGAIN, CLUSTERDOWN past the timeout, LOADING / MASTERDOWN / READONLY,
# a redirect loop, a MOVED to a node that refuses connections, malformed
# MOVED / ASK lines, a batch moved as a whole, one item of a batch refused
# alone (sent again behind the item in front of it). Each case checks what the
# client sees and what every node received, in order, on which connection.
#
# The fakes (t/lib/SupportDesk/FakeRedis.pm) act as a 3-master cluster: A
# holds slots 0-5460, B 5461-10922, C 10923-16383, except the slots this
# file moves; each answers CLUSTER SLOTS with that map and -MOVED for a key
# it does not hold (like Redis), serves HGET sd:apikey:*, HGETALL
# sd:{app}:c:<id> and the upsert script, and follows what the test scripts
# for a key (a state file the test rewrites, read by the fakes on every
# command).
# Configuration: location /api/v1/ { supportdesk_redis_cluster <A>;
# supportdesk_redis_connections 1; } (one connection per master, so a
# pipeline is one connection); supportdesk_redis_timeout 2s (time for a
# held pipeline on a slow machine; the CLUSTERDOWN case waits that long).
# Single pass only (its storage is fakes, not the cluster of SD_CLUSTER=1).
use strict;
use warnings;
use Test::More;
use Digest::SHA qw(sha1_hex sha256_hex);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok wait_until single_pass_only);
use SupportDesk::Cluster;
use SupportDesk::FakeRedis;

single_pass_only('its storage is scripted fake nodes acting as a cluster, not the cluster of the cluster pass');

# CRC16 slots as Redis computes them (checked against CLUSTER KEYSLOT in t/70)
sub keyslot { SupportDesk::Cluster::keyslot($_[0]) }

# ---- the apps of the cases, each on its own slot, and their keys

my @APPS = qw(acme syncA syncB syncC moved1 moved2 lag pipe try down load mdown
              ro loop dead bad batch order);
my %KEY = map { $_ => "sdk_fake_cluster_key_$_" } @APPS;
my %APP_OF = map { sha256_hex($KEY{$_}) => $_ } @APPS;
my %SLOT = map { $_ => keyslot("sd:{$_}:c:x") } @APPS;
{
    my %seen;
    my @clash = grep { $seen{$SLOT{$_}}++ } @APPS;
    is_deeply(\@clash, [], 'every app of the file has a slot of its own')
        or diag join ' ', map { "$_=$SLOT{$_}" } @APPS;
}

sub bulk { '$' . length($_[0]) . "\r\n$_[0]\r\n" }
sub customer {
    my ($id) = @_;
    my @f = (s => 1, e => "$id\@example.com", n => "Customer $id", c => 1700000000, u => 1700000000);
    return '*' . @f . "\r\n" . join '', map { bulk($_) } @f;
}

# ---- the shared state: ports, slot owners, scripted answers

my $dir = tempdir('sd-cluster-fake-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $STATE = "$dir/state.json";
my $JSON = JSON::PP->new->canonical;
my %state = (gen => 0, ports => {}, owner => {}, importing => {}, script => {});

sub write_state {
    $state{gen}++;
    open my $fh, '>', "$STATE.tmp" or die "$STATE.tmp: $!";
    print $fh $JSON->encode(\%state);
    close $fh;
    rename "$STATE.tmp", $STATE or die "rename: $!";
}
sub read_state {
    open my $fh, '<', $STATE or return {};
    local $/;
    my $j = <$fh>;
    return eval { $JSON->decode($j) } || {};
}
sub owner {
    my ($st, $slot, $table) = @_;
    return ($table // $st->{owner})->{$slot} // ($slot <= 5460 ? 'A' : $slot <= 10922 ? 'B' : 'C');
}
# CLUSTER SLOTS: the map, or the one "published" (a map that lags the
# move, so that no refresh can learn it before the MOVED says it)
sub slots_reply {
    my ($st) = @_;
    my $t = $st->{published};
    my @r;
    my ($first, $who) = (0, owner($st, 0, $t));
    for my $s (1 .. 16384) {
        my $o = $s < 16384 ? owner($st, $s, $t) : '';
        next if $o eq $who;
        push @r, [ $first, $s - 1, $who ];
        ($first, $who) = ($s, $o);
    }
    return '*' . @r . "\r\n" . join '', map {
        my ($f, $l, $n) = @$_;
        "*3\r\n:$f\r\n:$l\r\n*3\r\n" . bulk('127.0.0.1') . ":$st->{ports}{$n}\r\n" . bulk(sha1_hex($n))
    } @r;
}

# the key a command is about: of a script, its customer key (else its first)
sub key_of {
    my ($cmd) = @_;
    my $name = uc $cmd->[0];
    if ($name eq 'EVALSHA') {
        for (@$cmd[3 .. $#$cmd]) { return $_ if /^sd:\{[^}]+\}:c:/ }
        return $cmd->[3];
    }
    return $cmd->[1];
}

# the answer of a healthy node that holds the key
sub serve {
    my ($cmd, $key) = @_;
    my $name = uc $cmd->[0];
    if ($name eq 'HGET' && $key =~ /^sd:apikey:([0-9a-f]{64})\z/) {
        my $app = $APP_OF{$1};
        return defined $app ? bulk($app) : "\$-1\r\n";
    }
    return customer($1) if $name eq 'HGETALL' && $key =~ /^sd:\{[^}]+\}:c:(.+)\z/;
    return "*2\r\n:1\r\n" . customer($1) if $name eq 'EVALSHA' && $key =~ /^sd:\{[^}]+\}:c:(.+)\z/;
    # the job runner's claim, and anything else: nothing there
    return "\$-1\r\n";
}

# hold_slots: a CLUSTER SLOTS answer held, with everything behind it on its
# connection, until hold_slots is off and the next command comes (a map in
# flight for as long as the test wants)
sub responder {
    my ($me) = @_;
    my $serve = responder_of($me);
    my %slots_held;
    return sub {
        my ($cmd, $conn) = @_;
        my $st = read_state();
        if ($st->{hold_slots} && (defined $slots_held{$conn}
                                  || (uc $cmd->[0] eq 'CLUSTER' && uc($cmd->[1] // '') eq 'SLOTS'))) {
            $slots_held{$conn} .= $serve->($cmd, $conn);
            return '';
        }
        my $ans = $serve->($cmd, $conn);
        return defined $slots_held{$conn} ? delete($slots_held{$conn}) . $ans : $ans;
    };
}

sub responder_of {
    my ($me) = @_;
    my ($gen, %used, %asking, %held, $piped) = (-1);
    return sub {
        my ($cmd, $conn) = @_;
        my $st = read_state();
        if (($st->{gen} // 0) != $gen) {
            ($gen, %used, $piped) = ($st->{gen} // 0);
        }
        my $name = uc $cmd->[0];
        return slots_reply($st) if $name eq 'CLUSTER' && uc($cmd->[1] // '') eq 'SLOTS';
        if ($name eq 'ASKING') {
            $asking{$conn} = 1;
            return "+OK\r\n";
        }
        # ASKING counts for the next command only
        my $asked = delete $asking{$conn};
        my $key = key_of($cmd) // '';
        my $slot = keyslot($key);
        my $ans;

        # scripted: answers for this key in turn, {repeat => ...} for ever
        my $list = $st->{script}{$me}{$key};
        if ($list && ($used{$key} // 0) < @$list) {
            my $e = $list->[$used{$key} // 0];
            if (ref $e) { $ans = $e->{repeat} }
            else { $used{$key}++; $ans = $e unless $e eq 'serve' }
        }
        if (!defined $ans) {
            my $owner = owner($st, $slot);
            if ($owner ne $me && !($asked && ($st->{importing}{$slot} // '') eq $me)) {
                $ans = "-MOVED $slot 127.0.0.1:$st->{ports}{$owner}\r\n";
            } else {
                $ans = serve($cmd, $key);
            }
        }

        # a pipeline: the first n-1 HGETALLs of the app held, the ask-th
        # answered -ASK, everything released in order with the n-th
        my $p = $st->{pipeline};
        if ($p && $p->{node} eq $me && $name eq 'HGETALL' && $key =~ /^sd:\{\Q$p->{app}\E\}:c:/
            && ($piped // 0) < $p->{n})
        {
            $piped++;
            $ans = "-ASK $slot 127.0.0.1:$st->{ports}{$p->{to}}\r\n" if $piped == $p->{ask};
            $held{$conn} .= $ans;
            return $piped == $p->{n} ? delete $held{$conn} : '';
        }
        if (defined $held{$conn}) {
            # behind the held answers, in order
            $held{$conn} .= $ans;
            return '';
        }
        return $ans;
    };
}

my %fake = map { $_ => SupportDesk::FakeRedis->new(respond => responder($_)) } qw(A B C);
my $dead = do {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1)
        or die "listen: $!";
    my $p = $s->sockport;
    close $s;
    $p;
};
$state{ports} = { (map { $_ => $fake{$_}->port } keys %fake), D => $dead };
# the case apps start on A; syncX on X
$state{owner}{$SLOT{$_}} = 'A' for grep { !/^sync/ } @APPS;
$state{owner}{$SLOT{"sync$_"}} = $_ for qw(A B C);
write_state();

my $TIMEOUT = 2;
my $env = SupportDesk::Test->new(
    redis_timeout => "${TIMEOUT}s",
    location_conf => "supportdesk_redis_cluster 127.0.0.1:$state{ports}{A}; supportdesk_redis_connections 1;",
);
my ($worker) = $env->worker_pids;

sub get {
    my ($app, $id, %o) = @_;
    return $env->api('GET', $id, $KEY{$app}, undef, timeout => 10, %o);
}
sub log_count { my $re = shift; scalar(() = $env->nginx_error_log =~ /$re/g) }
sub mark { return { map { $_ => scalar(my @c = $fake{$_}->commands) } keys %fake } }
# the commands node received since the mark that match re
sub since {
    my ($m, $node, $re) = @_;
    my @c = $fake{$node}->commands;
    return grep { $_ =~ $re } @c[$m->{$node} .. $#c];
}
sub refreshes { my $m = shift; return map { scalar since($m, $_, qr/^\d+ CLUSTER SLOTS$/) } qw(A B C) }
sub served_ok {
    my ($r, $id, $name) = @_;
    envelope_ok($r, 200, undef, "$name: 200");
    is($r->{json}{data}{customer}{name}, "Customer $id", "$name: the customer $id");
}

# the map refreshed since the mark has been applied: a refresh came in,
# then a request on that node's connection, answered after it, is served
sub map_applied {
    my ($m, $name) = @_;
    my $node;
    ok(wait_until(sub { ($node) = grep { since($m, $_, qr/^\d+ CLUSTER SLOTS$/) } qw(A B C); $node }, 10),
       "$name: the map is asked again");
    served_ok(get("sync$node", 'sync'), 'sync', "$name: a request behind the refresh on $node") if $node;
}

# ---- start: the seed gives the map, the other masters get connected

ok(wait_until(sub { (grep { $fake{$_}->ready >= 1 } qw(A B C)) == 3 }, 10),
   'the seed named the other masters: each has a connection with its handshake');
{
    my @a = $fake{A}->commands;
    ok((grep { /^\d+ CLUSTER SLOTS$/ } @a), 'the map was asked of the seed');
}
my $m = mark();
served_ok(get('acme', 'first'), 'first', 'served');
# warm the key cache: from here on, a request is one HGETALL
for my $app (@APPS) {
    envelope_ok(get($app, 'warm'), 200, undef, "$app: warm-up") or diag $env->nginx_error_log;
}
{
    my $m = mark();
    served_ok(get('try', 'w2'), 'w2', 'a key known');
    is_deeply([ since($m, 'A', qr/sd:\{|sd:apikey/) ], ['1 HGETALL sd:{try}:c:w2'], '... one HGETALL on A, nothing else');
}

# ---- MOVED: served by the new master, the slot patched, the map refreshed

{
    $state{published} = { %{ $state{owner} } };
    $state{owner}{$SLOT{moved1}} = 'B';
    $state{owner}{$SLOT{moved2}} = 'B';
    write_state();
    my $m = mark();
    served_ok(get('moved1', 'm1'), 'm1', 'MOVED');
    is_deeply([ since($m, 'A', qr/moved/) ], ['1 HGETALL sd:{moved1}:c:m1'], 'MOVED: A answered MOVED');
    is_deeply([ since($m, 'B', qr/moved/) ], ['1 HGETALL sd:{moved1}:c:m1'], 'MOVED: ... B served it');
    is_deeply([ since($m, 'C', qr/moved/) ], [], 'MOVED: ... C saw nothing');
    delete $state{published};
    write_state();
    map_applied(mark(), 'MOVED');
    my $m2 = mark();
    served_ok(get('moved1', 'm2'), 'm2', 'MOVED, the slot again');
    served_ok(get('moved2', 'm3'), 'm3', 'MOVED, another slot that moved (no MOVED seen for it)');
    is_deeply([ since($m2, 'A', qr/moved/) ], [], 'MOVED: A is not asked for either any more');
    is_deeply([ since($m2, 'B', qr/moved/) ], ['1 HGETALL sd:{moved1}:c:m2', '1 HGETALL sd:{moved2}:c:m3'],
              'MOVED: ... both go straight to B');
}

# ---- a map in flight that lags a MOVED: the MOVED stays
#
# A CLUSTER SLOTS is sent (after a MOVED of another app), and its answer,
# a map that lags, held; meanwhile a MOVED says where a slot went. The map
# that comes after does not undo it: the slot's next request goes straight
# to the node the MOVED named. (Before, the map put the slot back, and
# every request there met the MOVED again until a map said so too.)

{
    $state{published} = { %{ $state{owner} } };
    $state{hold_slots} = 1;
    $state{owner}{$SLOT{lag}} = 'B';
    write_state();
    my $m = mark();
    served_ok(get('lag', 'l1'), 'l1', 'a map in flight: a MOVED');
    my $held;
    ok(wait_until(sub { ($held) = grep { since($m, $_, qr/^\d+ CLUSTER SLOTS$/) } qw(A B C); $held }, 10),
       '... the map asked again (and its answer held)');
    $held //= 'A';
    my ($from) = grep { $_ ne $held } qw(A B C);
    my ($to) = grep { $_ ne $held && $_ ne $from } qw(A B C);
    my $app = "sync$from";
    $state{owner}{$SLOT{$app}} = $to;
    write_state();
    my $m1 = mark();
    served_ok(get($app, 's1'), 's1', "while the map is in flight, $app moved from $from to $to");
    is_deeply([ since($m1, $from, qr/\Q$app\E/) ], ["1 HGETALL sd:{$app}:c:s1"], "... $from answered MOVED");
    is_deeply([ since($m1, $to, qr/\Q$app\E/) ], ["1 HGETALL sd:{$app}:c:s1"], "... $to served it");
    $state{hold_slots} = 0;
    write_state();
    # on the connection the map is held on: the map, then this answer
    served_ok(get("sync$held", 's2'), 's2', "the lagging map from $held, answered in front of a request");
    my $m2 = mark();
    served_ok(get($app, 's3'), 's3', "$app after the map");
    is_deeply([ since($m2, $from, qr/\Q$app\E/) ], [], "... $from not asked: the map that lags did not undo the MOVED");
    is_deeply([ since($m2, $to, qr/\Q$app\E/) ], ["1 HGETALL sd:{$app}:c:s3"], "... straight to $to");
    # back as it was: the app's next request is MOVED home
    delete $state{published};
    delete $state{hold_slots};
    $state{owner}{$SLOT{$app}} = $from;
    write_state();
    served_ok(get($app, 's4'), 's4', "$app back on $from");
}

# ---- ASK in the middle of a pipeline

{
    $state{pipeline} = { node => 'A', app => 'pipe', n => 3, ask => 2, to => 'C' };
    $state{importing}{$SLOT{pipe}} = 'C';
    write_state();
    my $m = mark();
    my @id = qw(p1 p2 p3);
    my @r = $env->parallel([ map { $env->http_bytes('GET', "/api/v1/customers/$_", headers => { 'X-API-Key' => $KEY{pipe} }) } @id ],
                           timeout => 10);
    served_ok($r[$_], $id[$_], "ASK in a pipeline: request $id[$_]") for 0 .. 2;
    my @a = since($m, 'A', qr/pipe/);
    is(scalar @a, 3, 'ASK in a pipeline: A got the three') or diag explain \@a;
    my @conns = map { /^(\d+) / } @a;
    is_deeply(\@conns, [1, 1, 1], '... on one connection (all three in flight at once: A held its answers until the third)');
    my ($mid) = ($a[1] // '') =~ /c:(p\d)$/;
    ok($mid, "... the second, $mid, was answered -ASK");
    my @c = since($m, 'C', qr/./);
    is_deeply([ grep { /ASKING|pipe/ } @c ], ['1 ASKING', "1 HGETALL sd:{pipe}:c:$mid"],
              '... C got ASKING and that command, on one connection');
    my ($i) = grep { $c[$_] eq '1 ASKING' } 0 .. $#c;
    is(defined $i ? $c[$i + 1] : undef, "1 HGETALL sd:{pipe}:c:$mid", '... ASKING immediately followed by it');
    is_deeply([ since($m, 'B', qr/pipe/) ], [], '... B nothing');
    delete $state{pipeline};
    write_state();
    my $m2 = mark();
    served_ok(get('pipe', 'p4'), 'p4', 'after the ASK');
    is_deeply([ since($m2, 'A', qr/pipe/) ], ['1 HGETALL sd:{pipe}:c:p4'], '... the map is unchanged: the next goes to A again');
    is_deeply([ since($m2, 'C', qr/pipe|ASKING/) ], [], '... not to C');
    delete $state{importing}{$SLOT{pipe}};
}

# ---- TRYAGAIN twice, then served

{
    $state{script} = { A => { 'sd:{try}:c:t1' => [ ("-TRYAGAIN Multiple keys request during rehashing of slot\r\n") x 2 ] } };
    write_state();
    my $m = mark();
    served_ok(get('try', 't1'), 't1', 'TRYAGAIN twice');
    is_deeply([ since($m, 'A', qr/try/) ], [ ('1 HGETALL sd:{try}:c:t1') x 3 ], '... three tries on A, one connection');
    is_deeply([ map { since($m, $_, qr/try/) } qw(B C) ], [], '... nothing elsewhere');
}

# ---- CLUSTERDOWN for longer than the request's timeout: 503 at the timeout

{
    my $DOWN = qr/\[error\] .*supportdesk: redis cluster: a command refused for now could not be served within ${\ ($TIMEOUT * 1000)} ms \(the last answer, from 127\.0\.0\.1:$state{ports}{A}: CLUSTERDOWN The cluster is down\)/;
    $state{script} = { A => { 'sd:{down}:c:d1' => [ { repeat => "-CLUSTERDOWN The cluster is down\r\n" } ] } };
    write_state();
    my $m = mark();
    my $t = time;
    my $r = get('down', 'd1');
    my $took = time - $t;
    envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', 'CLUSTERDOWN past the timeout: 503');
    cmp_ok($took, '>=', $TIMEOUT / 2, '... not at once: retried until the timeout was near');
    cmp_ok($took, '<', $TIMEOUT + 2, '... within the timeout and a margin');
    diag sprintf 'CLUSTERDOWN: answered in %.3f s', $took;
    my @a = since($m, 'A', qr/down/);
    cmp_ok(scalar @a, '>=', 3, 'CLUSTERDOWN: tried again and again');
    # 10, 20, 40, 80, 160, then 200 ms apart: 15 in 2 s
    cmp_ok(scalar @a, '<=', 20, '... with a backoff (10 ms doubling to 200 ms)');
    diag 'CLUSTERDOWN: ' . scalar(@a) . ' tries';
    is_deeply([ grep { !/^1 / } @a ], [], '... on one connection, never dropped');
    ok(wait_until(sub { log_count($DOWN) >= 1 }, 3), '... logged, with the last answer');
    $state{script} = {};
    write_state();
    served_ok(get('down', 'd2'), 'd2', 'the cluster up again');
}

# ---- LOADING, MASTERDOWN, READONLY for a moment: served after a retry

{
    my %err = (
        load  => "-LOADING Redis is loading the dataset in memory\r\n",
        mdown => "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
        ro    => "-READONLY You can't write against a read only replica.\r\n",
    );
    $state{script} = { A => { map { ("sd:{$_}:c:x1" => [ $err{$_} ]) } keys %err } };
    write_state();
    for my $app (qw(load mdown)) {
        my $m = mark();
        served_ok(get($app, 'x1'), 'x1', "$app once");
        is_deeply([ since($m, 'A', qr/\{$app\}/) ], [ ("1 HGETALL sd:{$app}:c:x1") x 2 ], "$app: two tries on A");
    }
    my $m = mark();
    my $r = $env->api('PATCH', 'x1', $KEY{ro}, { email => 'x1@example.com', name => 'Customer x1' }, timeout => 10);
    envelope_ok($r, 200, undef, 'READONLY once, on a write: 200');
    is($r->{json}{data}{customer}{name}, 'Customer x1', '... the customer the script answered');
    my @a = since($m, 'A', qr/\{ro\}/);
    is(scalar @a, 2, 'READONLY: the script twice on A') or diag explain \@a;
    is_deeply([ grep { !/^1 EVALSHA / } @a ], [], '... EVALSHA, one connection');
    my @b = map { since($m, $_, qr/\{ro\}/) } qw(B C);
    is_deeply(\@b, [], '... nothing elsewhere');
    # a replica where a master was: the map may have changed
    map_applied($m, 'READONLY');
}

# ---- a redirect loop: A says B, B says A... bounded, 503, logged

{
    my $LOOP = qr/\[error\] .*supportdesk: redis cluster: a command was redirected 16 times, the last by 127\.0\.0\.1:$state{ports}{A}: MOVED $SLOT{loop} 127\.0\.0\.1:$state{ports}{B}/;
    my $k = 'sd:{loop}:c:l1';
    $state{script} = {
        A => { $k => [ { repeat => "-MOVED $SLOT{loop} 127.0.0.1:$state{ports}{B}\r\n" } ] },
        B => { $k => [ { repeat => "-MOVED $SLOT{loop} 127.0.0.1:$state{ports}{A}\r\n" } ] },
    };
    write_state();
    my $m = mark();
    my $t = time;
    my $r = get('loop', 'l1');
    my $took = time - $t;
    envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', 'a redirect loop: 503');
    my @a = since($m, 'A', qr/loop/);
    my @b = since($m, 'B', qr/loop/);
    is(scalar(@a) + scalar(@b), 17, '... the command sent 17 times (16 redirects followed)');
    is(scalar @a, 9, '... 9 times to A');
    is(scalar @b, 8, '... 8 times to B');
    ok(wait_until(sub { log_count($LOOP) >= 1 }, 3), '... logged, naming the last redirect');
    # at most one CLUSTER SLOTS per 100 ms however many MOVED came
    my $n = 0;
    $n += $_ for refreshes($m);
    cmp_ok($n, '<=', 2 + int($took / 0.1), "... the map asked $n times in ${\ sprintf '%.3f', $took} s for 17 MOVED");
    $state{script} = {};
    write_state();
    my $m2 = mark();
    served_ok(get('loop', 'l2'), 'l2', 'after the loop');
    is_deeply([ since($m2, 'A', qr/loop/) ], ['1 HGETALL sd:{loop}:c:l2'], '... from A');
}

# ---- MOVED to a node that refuses connections

{
    my $REFUSED = qr/\[error\] .*supportdesk: redis 127\.0\.0\.1:$dead connect\(\) failed \(111: Connection refused\)/;
    # for ever: a refresh in the 1 ms before it is followed changes nothing
    $state{script} = { A => { 'sd:{dead}:c:z1' => [ { repeat => "-MOVED $SLOT{dead} 127.0.0.1:$dead\r\n" } ] } };
    write_state();
    my $m = mark();
    my $t = time;
    my $r = get('dead', 'z1');
    my $took = time - $t;
    envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', 'MOVED to a node that refuses connections: 503');
    cmp_ok($took, '<', $TIMEOUT, '... answered before the timeout, nothing hangs');
    diag sprintf 'MOVED to a closed port: answered in %.3f s', $took;
    ok(wait_until(sub { log_count($REFUSED) >= 1 }, 3), '... the failed connect is logged');
    my @a = since($m, 'A', qr/dead/);
    ok(@a && !grep({ $_ ne '1 HGETALL sd:{dead}:c:z1' } @a), '... A got it (once, unless a refresh came in between)')
        or diag explain \@a;
    $state{script} = {};
    write_state();
    # the next refresh puts the slot back where the map has it
    map_applied(mark(), 'MOVED to a closed port');
    my $m2 = mark();
    served_ok(get('dead', 'z2'), 'z2', 'after the map was asked again');
    is_deeply([ since($m2, 'A', qr/dead/) ], ['1 HGETALL sd:{dead}:c:z2'], '... by A');
}

# ---- malformed MOVED and ASK lines: handled, or 503; never a crash

{
    my ($pb, $pc) = @{ $state{ports} }{qw(B C)};
    my $s = $SLOT{bad};
    # [line, status]: a redirect that cannot be followed is an answer
    # Redis should not have given (503); one whose node cannot be used is
    # tried again where the map says, which serves it (200)
    my @cases = (
        [ "-MOVED\r\n", 503 ],
        [ "-MOVED \r\n", 503 ],
        [ "-MOVED $s\r\n", 503 ],
        [ "-MOVED $s \r\n", 503 ],
        [ "-MOVED 16384 127.0.0.1:$pb\r\n", 503 ],
        [ "-MOVED 99999999999999999999999 127.0.0.1:$pb\r\n", 503 ],
        [ "-MOVED -1 127.0.0.1:$pb\r\n", 503 ],
        [ "-MOVED 12a 127.0.0.1:$pb\r\n", 503 ],
        [ "-ASK\r\n", 503 ],
        [ "-ASK x 127.0.0.1:$pc\r\n", 503 ],
        [ "-MOVED $s nohost\r\n", 200 ],
        [ "-MOVED $s localhost:$pb\r\n", 200 ],
        [ "-MOVED $s 127.0.0.1:\r\n", 200 ],
        [ "-MOVED $s 127.0.0.1:99999\r\n", 200 ],
        [ "-MOVED $s 127.0.0.1:$pb trailing\r\n", 200 ],
        [ "-MOVED $s " . ('9' x 300) . "\r\n", 200 ],
        [ "-ASK $s 127.0.0.1\r\n", 200 ],
        [ "-ASK $s :$pc\r\n", 200 ],
    );
    my $i = 0;
    for my $c (@cases) {
        my ($line, $want) = @$c;
        my $id = 'b' . ++$i;
        (my $shown = $line) =~ s/\r\n\z//;
        $shown = substr($shown, 0, 40) . '...' if length $shown > 43;
        $state{script} = { A => { "sd:{bad}:c:$id" => [ $line ] } };
        write_state();
        my $m = mark();
        my $r = get('bad', $id);
        if ($want == 200) {
            served_ok($r, $id, "\"$shown\"");
            is_deeply([ since($m, 'A', qr/bad/) ], [ ("1 HGETALL sd:{bad}:c:$id") x 2 ], "\"$shown\": tried again on A");
        } else {
            envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', "\"$shown\": 503");
            is_deeply([ since($m, 'A', qr/bad/) ], ["1 HGETALL sd:{bad}:c:$id"], "\"$shown\": not followed");
        }
        is_deeply([ map { since($m, $_, qr/bad/) } qw(B C) ], [], "\"$shown\": nothing sent elsewhere");
    }
    $state{script} = {};
    write_state();
    served_ok(get('bad', 'b0'), 'b0', 'after the malformed lines');
}

# ---- a batch whose slot moved: every item resent on the new master, in order

{
    $state{published} = { %{ $state{owner} } };
    $state{owner}{$SLOT{batch}} = 'C';
    write_state();
    my $m = mark();
    my @ids = map { "i$_" } 1 .. 5;
    my $r = $env->api('PATCH', '/api/v1/customers', $KEY{batch},
                      { customers => [ map { { externalId => $_, email => "$_\@example.com", name => "Customer $_" } } @ids ] },
                      timeout => 10);
    envelope_ok($r, 200, undef, 'a batch on a moved slot: 200');
    my $res = $r->{json}{data}{results} // [];
    is_deeply([ map { $_->{externalId} } @$res ], \@ids, '... every item answered, in order');
    is_deeply([ grep { !$_->{success} } @$res ], [], '... all of them succeeded');
    my @want = map { "1 EVALSHA $_" } @ids;
    my @a = map { /^(\d+) EVALSHA .*sd:\{batch\}:c:(i\d)/ ? "$1 EVALSHA $2" : $_ } since($m, 'A', qr/\{batch\}/);
    my @c = map { /^(\d+) EVALSHA .*sd:\{batch\}:c:(i\d)/ ? "$1 EVALSHA $2" : $_ } since($m, 'C', qr/\{batch\}/);
    is_deeply(\@a, \@want, '... A got the items pipelined in order (and answered MOVED to each)');
    is_deeply(\@c, \@want, '... C got them again in the same order, on one connection');
    delete $state{published};
    write_state();
}

# ---- one item of a batch refused alone: sent again behind the one in front
#
# The two items reach A pipelined; A answers one TRYAGAIN (some of its keys
# still there, as a migration's source does) and the other ASK (all of its
# keys already on C, the target). Sent again, the second must not overtake
# the first: it goes right behind it, on the same connection, by the same
# route, whichever of them met the ASK. Before, each went its own way (the
# TRYAGAIN'd one to A, the ASK'd one to C at the same time), and C could
# apply the second item before A applied the first.

for my $case ([ 'first TRYAGAIN, second ASK', 'TRYAGAIN', 'ASK' ],
              [ 'first ASK, second TRYAGAIN', 'ASK', 'TRYAGAIN' ])
{
    my ($name, @refusal) = @$case;
    my @ids = map { "o$_" . lc substr($refusal[0], 0, 1) } 1, 2;
    my %answer = (
        TRYAGAIN => "-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
        ASK      => "-ASK $SLOT{order} 127.0.0.1:$state{ports}{C}\r\n",
    );
    $state{importing}{$SLOT{order}} = 'C';
    $state{script} = { A => { map { ("sd:{order}:c:$ids[$_]" => [ $answer{$refusal[$_]} ]) } 0, 1 } };
    write_state();
    my $m = mark();
    my $r = $env->api('PATCH', '/api/v1/customers', $KEY{order},
                      { customers => [ map { { externalId => $_, email => "$_\@example.com", name => "Customer $_" } } @ids ] },
                      timeout => 10);
    envelope_ok($r, 200, undef, "$name: 200");
    my $res = $r->{json}{data}{results} // [];
    is_deeply([ map { $_->{externalId} } @$res ], \@ids, "$name: both items answered, in order");
    is_deeply([ grep { !$_->{success} } @$res ], [], "$name: both succeeded");
    my $short = sub { map { /^(\d+) EVALSHA .*sd:\{order\}:c:(o\d\w)/ ? "$1 EVALSHA $2" : $_ } @_ };
    my @a = $short->(since($m, 'A', qr/\{order\}/));
    my @c = $short->(since($m, 'C', qr/\{order\}|ASKING/));
    my @first = map { "1 EVALSHA $_" } @ids;
    if ($refusal[0] eq 'TRYAGAIN') {
        # the first goes to A again, by the map: the second behind it, its
        # ASK dropped (a real source would answer ASK again, behind it)
        is_deeply(\@a, [ @first, @first ], "$name: A got both, then both again, in order, on one connection");
        is_deeply(\@c, [], "$name: C got neither (the second did not go there on its own)");
    } else {
        # the first follows its ASK to C: the second goes with it, each with
        # its own ASKING in front
        is_deeply(\@a, \@first, "$name: A got both once");
        is_deeply(\@c, [ map { ('1 ASKING', "1 EVALSHA $_") } @ids ],
                  "$name: C got both, in order, each behind its ASKING, on one connection");
    }
    delete $state{importing}{$SLOT{order}};
    $state{script} = {};
    write_state();
}

# ---- clients that leave while their command waits to be tried again

for my $what (qw(CLUSTERDOWN ASK)) {
    my $id = "gone_$what";
    my $k = "sd:{down}:c:$id";
    # CLUSTERDOWN: the command waits 10 ms, doubling, to be sent again;
    # ASK: A sends it to C, which answers TRYAGAIN (a key of it not there
    # yet), so it goes back to A after a while, and again
    $state{script} = $what eq 'ASK'
        ? { A => { $k => [ { repeat => "-ASK $SLOT{down} 127.0.0.1:$state{ports}{C}\r\n" } ] },
            C => { $k => [ { repeat => "-TRYAGAIN Multiple keys request during rehashing of slot\r\n" } ] } }
        : { A => { $k => [ { repeat => "-CLUSTERDOWN The cluster is down\r\n" } ] } };
    write_state();
    my $m = mark();
    my $LATE = qr/supportdesk: redis cluster: a command (?:refused for now could not be served|redirected or refused for now could not be served|was redirected)/;
    my $late = log_count($LATE);
    my $t0 = time;
    my @s;
    for (1 .. 5) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->port, Proto => 'tcp')
            or die "connect: $!";
        print $s $env->http_bytes('GET', "/api/v1/customers/$id", headers => { 'X-API-Key' => $KEY{down} });
        push @s, $s;
    }
    ok(wait_until(sub { since($m, 'A', qr/\Q$k\E/) >= 10 }, 5), "$what: the commands are being tried again");
    close $_ for @s;
    # the requests go away meanwhile; their commands must not be sent again
    my $n;
    ok(wait_until(sub {
        my $now = since($m, 'A', qr/\Q$k\E/) + since($m, 'C', qr/\Q$k\E/);
        my $same = defined $n && $n == $now;
        $n = $now;
        $same;
    }, 5, 0.5), "$what: no command of theirs is sent once they left");
    # had they been kept, each would end by the timeout, logged
    sleep 0.1 while time < $t0 + $TIMEOUT + 1;
    is(log_count($LATE), $late, "$what: none is answered later (dropped as the clients left)");
    is_deeply([ $env->worker_pids ], [$worker], "$what: the same worker");
    $state{script} = {};
    write_state();
    served_ok(get('down', "$id.after"), "$id.after", "$what: served after they left");
}

# ---- the same worker, no connection to a fake ever dropped

{
    my @other = map { my $n = $_; map { "$n: $_" } grep { !/^1 / } $fake{$n}->commands } qw(A B C);
    is_deeply(\@other, [], 'every command reached each fake on its first connection');
    is_deeply([ $env->worker_pids ], [$worker], 'the same worker (no crash)');
    served_ok(get('acme', 'last'), 'last', 'served at the end');
}

done_testing;
