# supportdesk_metrics on a Redis Cluster (issue 13, issue 11 item 7): the
# exposition passes `promtool check metrics`; the connections to every
# master, summed over the workers; requests counted as on one Redis; an app's
# slot moved to another master step by step, and each step seen in the
# counters: ASK while the slot is migrating (a key not on the source), a
# write retried after a backoff (TRYAGAIN: its keys split between the two
# masters) until the slot is the target's, then MOVED there, the slot map
# refreshed; every answer right, every request counted once.
# Configuration: cluster pass only (SD_CLUSTER=1: 3 masters, 3 replicas);
# 2 workers; supportdesk_redis_timeout 10s (a retried command waits for the
# migration's end); `location = /metrics { supportdesk_metrics; }`.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use SupportDesk::Test qw(wait_until cluster_mode json_decode);
use SupportDesk::Cluster;

plan(skip_all => 'cluster pass only: redirects need a Redis Cluster (SD_CLUSTER=1, make test-cluster); t/65 checks the metrics on one Redis')
    unless cluster_mode();

my $single = ($ENV{SD_MASTER_PROCESS} // 'on') eq 'off';
my $W = $single ? 1 : 2;

my $env = SupportDesk::Test->new(
    worker_processes => 2,
    redis_timeout    => '10s',
    server_conf      => 'location = /metrics { supportdesk_metrics; }',
);
my $c = $env->cluster;
my @masters = $c->masters;
my $key = $env->create_key('acme', 'metrics');

# the requests sent to the API: one ends (and is counted) when its
# connection does, which may be after its client has the answer (nginx
# lingers on a request with a body until the client closes)
my $SENT = 0;
sub api { $SENT++; return $env->api(@_) }

sub parse_metrics {
    my ($text) = @_;
    my %v;
    for my $line (split /\n/, $text) {
        next if $line =~ /^#/;
        my ($name, $lab, $value) = $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/ or next;
        my @l = defined $lab ? sort split /,(?=[a-z_]+=)/, $lab : ();
        s/"//g for @l;
        $v{ $name . '{' . join(',', @l) . '}' } = $value;
    }
    return \%v;
}

sub scrape {
    my $res = $env->request('GET', '/metrics');
    die "scrape: $res->{status}" unless $res->{status} == 200;
    return { v => parse_metrics($res->{body}), text => $res->{body} };
}

sub val {
    my ($m, $name, %l) = @_;
    return $m->{v}{ $name . '{' . join(',', map { "$_=$l{$_}" } sort keys %l) . '}' } // 0;
}

sub settled {
    my $m;
    wait_until(sub { $m = scrape(); sum_of($m) >= $SENT }, 10, 0.05);
    return $m;
}

sub sum_of {
    my ($m) = @_;
    my $sum = 0;
    $sum += $m->{v}{$_} for grep { /^supportdesk_http_requests_total\{/ } keys %{ $m->{v} };
    return $sum;
}

my $C = '/customers/{externalId}';
my $CONNS = 2 * @masters * $W;

# ---------------------------------------------------------------- a cluster at rest
ok(wait_until(sub { val(scrape(), 'supportdesk_redis_connections', state => 'connected') == $CONNS }, 10, 0.1),
   "connections: 2 to each of the " . scalar(@masters) . " masters per worker, $CONNS connected in all");

is(api('PATCH', "m$_", $key, { email => "m$_\@acme.com", name => "M $_" })->{status}, 200, "PATCH m$_") for 1 .. 3;
is(api('GET', 'm1', $key)->{status}, 200, 'GET m1');
is(api('GET', 'nobody', $key)->{status}, 404, 'GET nobody');
my $m = settled();
is(val($m, 'supportdesk_http_requests_total', route => $C, method => 'PATCH', code => 200), 3, 'requests: 3 PATCH 200');
is(val($m, 'supportdesk_http_requests_total', route => $C, method => 'GET', code => 200), 1, 'requests: 1 GET 200');
is(val($m, 'supportdesk_http_requests_total', route => $C, method => 'GET', code => 404), 1, 'requests: 1 GET 404');
is(val($m, 'supportdesk_events_appended_total'), 3, 'events appended: 3');
# (a worker's first commands, before its slot map came, may have been
# MOVED: the counts below are from here on)
cmp_ok(val($m, 'supportdesk_redis_cluster_refreshes_total'), '>=', $W, 'the slot map asked for at start, by every worker');
$env->promtool_ok($m->{text}, 'a cluster at rest');
sub delta { my ($x, $y, $name, %l) = @_; return val($y, $name, %l) - val($x, $name, %l) }

# ---------------------------------------------------------------- the app's slot moves
my $slot = SupportDesk::Cluster::keyslot('sd:{acme}:c:m1');
my $from = $c->master_of_slot($slot);
my ($to) = grep { $_ ne $from } @masters;
my $e0 = scrape();
my $refreshes = val($e0, 'supportdesk_redis_cluster_refreshes_total');
$c->begin_migration($slot, $to);

# ASK: a key the source does not hold while its slot is migrating
is(api('GET', 'ghost', $key)->{status}, 404, 'migrating: GET of a customer nobody has, 404');
my $e1 = scrape();
cmp_ok(delta($e0, $e1, 'supportdesk_redis_redirects_total', kind => 'ask'), '>=', 1,
       'redirects{kind="ask"}: the source sent the read to the target');
is(delta($e0, $e1, 'supportdesk_redis_redirects_total', kind => 'moved'), 0, '... not a MOVED');

# TRYAGAIN: m1's hash on the target, the app's indexes still on the source
my @keys = $c->node_client($from)->cluster('getkeysinslot', $slot, 1000);
ok((grep { $_ eq 'sd:{acme}:c:m1' } @keys), 'm1 is on the source');
# as SupportDesk::Cluster's migrate_keys: over TLS to the TLS port, with the
# password when the nodes have one
my ($host, $port) = split /:/, $c->{tls} ? $c->tls_addr($to) : $to;
$c->node_client($from)->migrate($host, $port, '', 0, 5000,
                                (defined $c->password ? ('AUTH', $c->password) : ()),
                                'KEYS', 'sd:{acme}:c:m1');
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->port, Timeout => 10) or die "connect: $!";
my $body = '{"name":"During the move"}';
$SENT++;
print $s "PATCH /api/v1/customers/m1 HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\nConnection: close\r\n"
       . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
ok(wait_until(sub { delta($e0, scrape(), 'supportdesk_redis_cluster_retries_total') >= 1 }, 5, 0.05),
   'cluster_retries_total: the write, its keys split between two masters, sent again after a backoff');
my $e2 = scrape();
cmp_ok(delta($e0, $e2, 'supportdesk_redis_errors_total', kind => 'tryagain'), '>=', 1, 'errors{kind="tryagain"}: the refusals, by their code');
is(delta($e0, $e2, 'supportdesk_redis_redirects_total', kind => 'moved'), 0, 'no MOVED while the slot is the source\'s');

# MOVED: the workers stopped while the rest of the slot moves and the slot
# settles on the target (a try meanwhile could find the source without keys,
# which is an ASK); once they go on, the write's next try goes to the source
# its map still names, is MOVED to the target, runs there, and the slot map
# is asked again
my @workers = $env->worker_pids;
kill 'STOP', @workers;
my $moved_keys = eval { $c->migrate_keys($slot) };
my $settled = eval { $c->end_migration($slot) };
kill 'CONT', @workers;
ok($moved_keys && $moved_keys >= 3, "the app's other keys moved ($moved_keys)") or diag($@);
is($settled, $to, 'the slot settled on the target') or diag($@);
my $answer = do { local $/; <$s> } // '';
# the request ends (its log phase counts it) once the client closed too
# (nginx's lingering close)
close $s;
like($answer, qr{^HTTP/1\.1 200 }, 'the retried write is answered 200');
cmp_ok(delta($e0, scrape(), 'supportdesk_redis_redirects_total', kind => 'moved'), '>=', 1,
       'redirects{kind="moved"}: the write sent to the old owner, resent to the new');
# a refresh after a MOVED waits out the throttle (100 ms since the last)
ok(wait_until(sub { val(scrape(), 'supportdesk_redis_cluster_refreshes_total') > $refreshes }, 5, 0.05),
   'cluster_refreshes_total: the slot map asked again');
is(val(settled(), 'supportdesk_http_requests_total', route => $C, method => 'PATCH', code => 200), 4,
   'the retried write counted once, with its status');

my $ok = 1;
for (1 .. 20) { $ok &&= api('GET', 'm2', $key)->{status} == 200 }
ok($ok, '20 reads after the move: 200');
is(api('GET', 'm1', $key)->{json}{data}{customer}{name}, 'During the move', 'the write during the move is stored');

# the requests of the whole test, counted once each (20 reads of m2, the
# 3 writes, the move's write, the two GETs of m1, the two 404s)
my $final = settled();
is(sum_of($final), $SENT, "every request counted once ($SENT)");
is(val($final, 'supportdesk_http_requests_total', route => $C, method => 'GET', code => 200), 22,
   'requests: every GET 200 once, redirects or not');
is(val($final, 'supportdesk_http_requests_total', route => $C, method => 'PATCH', code => 200), 4,
   'requests: every PATCH 200 once, retried or not');
is(val($final, 'supportdesk_redis_connections', state => 'connected'), $CONNS, "still $CONNS connections");
is(val($final, 'supportdesk_redis_errors_total', kind => 'other'), 0, 'the MOVED and ASK followed are redirects, not errors');
$env->promtool_ok($final->{text}, 'after a slot moved');

done_testing;
