# supportdesk_metrics (issue 13, SPEC 13): the Prometheus endpoint after
# known traffic: exact counts per route, method, status and error code, each
# histogram's _count equal to its requests, every name of
# dashboards/metrics.txt, `promtool check metrics` (Debian's prometheus
# package, installed by make deps), everything summed over two workers; the
# gauges (connections, pending commands) as Redis is killed and paused; the
# key cache (a hit, a negative, a miss, limited), events, replays, jobs;
# counters kept across a reload, a killed
# worker's gauges gone; the location answers GET and HEAD only; no raw path
# in a label; $supportdesk_route and $supportdesk_redis_time in a log_format.
# Configuration: 2 workers; supportdesk_redis_timeout 3s;
# `location = /metrics { supportdesk_metrics; }`; an access log with the two
# variables and $pid; an environment with supportdesk_key_lookup_rate 1
# (keys refused without a lookup, "limited"); one without metrics (the
# variables alone); nginx -t cases.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use IO::Socket::INET;
use SupportDesk::Test qw(envelope_ok wait_until repo_root pct single_redis_only);

single_redis_only('it pauses, kills and restarts the one Redis, flushes its scripts, runs a bulk-update job; t/66 checks the metrics on a cluster');

my $root = repo_root();

# under valgrind (make test-valgrind) nginx is one process: one "worker",
# nothing to signal
my $single = ($ENV{SD_MASTER_PROCESS} // 'on') eq 'off';
my $W = $single ? 1 : 2;
my $CONNS = 2 * $W;

my $env = SupportDesk::Test->new(
    worker_processes => 2,
    # a command held by a paused Redis stays pending long enough to be seen
    redis_timeout => '3s',
    server_conf => 'location = /metrics { supportdesk_metrics; }',
    http_conf => q{log_format sdm '$pid $status "$supportdesk_route" $supportdesk_redis_time $request_method $request_uri';
                   access_log %TMP%/metrics.log sdm;},
);
my $key = $env->create_key('acme', 'metrics');

# every request the test sends to the API, counted here: the log phase
# counts a request when it ends, which may be after its client has the
# answer (nginx lingers on a connection whose request had a body until the
# client closes), so a scrape first waits until every one was counted
my $SENT = 0;
sub api          { $SENT++; return $env->api(@_) }
sub sent_request { $SENT++; return $env->request(@_) }

# ---------------------------------------------------------------- helpers

# the exposition parsed: { "name{l=v,...}" => value } (labels sorted), the
# TYPE of each family, every label value, every problem of syntax
sub parse_metrics {
    my ($text) = @_;
    my (%v, %type, @labels, @problems);
    for my $line (split /\n/, $text) {
        next if $line =~ /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/;
        if ($line =~ /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/) {
            $type{$1} = $2;
            next;
        }
        my ($name, $lab, $value) = $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
            or do { push @problems, "bad line: $line"; next };
        my @l;
        if (defined $lab) {
            while ($lab =~ /\G([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/gc) {
                my ($n, $val) = ($1, $2);
                $val =~ s/\\(["\\])/$1/g;
                $val =~ s/\\n/\n/g;
                push @l, "$n=$val";
                push @labels, [$n, $val];
            }
            push @problems, "bad labels: $line" unless (pos($lab) // 0) == length $lab;
        }
        push @problems, "bad value: $line" unless $value =~ /^(?:\d+(?:\.\d+)?|\+Inf)$/;
        $v{ $name . '{' . join(',', sort @l) . '}' } = $value;
    }
    return (\%v, \%type, \@labels, \@problems);
}

sub scrape {
    my ($e) = @_;
    my $res = ($e // $env)->request('GET', '/metrics');
    die "scrape: $res->{status}" unless $res->{status} == 200;
    my ($v, $type, $labels, $problems) = parse_metrics($res->{body});
    return { v => $v, type => $type, labels => $labels, problems => $problems,
             text => $res->{body}, res => $res };
}

# a value: name and labels as a hash; 0 when the series is not there
sub val {
    my ($m, $name, %l) = @_;
    my $k = $name . '{' . join(',', map { "$_=$l{$_}" } sort keys %l) . '}';
    return $m->{v}{$k} // 0;
}

# the sum of a family's series whose labels include %l
sub sum_of {
    my ($m, $name, %l) = @_;
    my $sum = 0;
    SERIES: for my $k (keys %{ $m->{v} }) {
        my ($n, $lab) = $k =~ /^([^{]+)\{(.*)\}$/ or next;
        next unless $n eq $name;
        my %have = map { split /=/, $_, 2 } grep { length } split /,(?=[a-z_]+=)/, $lab;
        for (keys %l) { next SERIES unless defined $have{$_} && $have{$_} eq $l{$_} }
        $sum += $m->{v}{$k};
    }
    return $sum;
}

# a scrape once every request sent was counted (at most 10 s)
sub settled {
    my $m;
    wait_until(sub { $m = scrape(); sum_of($m, 'supportdesk_http_requests_total') >= $SENT }, 10, 0.05);
    return $m;
}

sub req_count {
    my ($m, $route, $method, $code) = @_;
    return val($m, 'supportdesk_http_requests_total', route => $route, method => $method, code => $code);
}

my $C = '/customers/{externalId}';

# ---------------------------------------------------------------- before traffic
my $m0 = scrape();
is_deeply($m0->{problems}, [], 'the exposition parses');
is($m0->{res}{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
   'Content-Type: text exposition 0.0.4');
is(sum_of($m0, 'supportdesk_http_requests_total'), 0, 'a fresh zone: no request counted yet');
# a worker's pool is in the gauges once the worker has started
ok(wait_until(sub { sum_of(scrape(), 'supportdesk_redis_connections') == $CONNS }, 5, 0.05),
   "connections: $W worker(s) x 2 in the gauges");
ok(wait_until(sub { val(scrape(), 'supportdesk_redis_connections', state => 'connected') == $CONNS }, 5, 0.05),
   "connections: all $CONNS connected, summed over the workers");

# ---------------------------------------------------------------- known traffic
my @ok = map { api('PATCH', "m$_", $key, { email => "m$_\@acme.com", name => "M $_" }) } 1 .. 3;
is_deeply([map { $_->{status} } @ok], [200, 200, 200], '3 PATCH 200 (creates)');
is(api('GET', 'nobody', $key)->{status}, 404, '1 GET 404 CUSTOMER_NOT_FOUND');
is(api('GET', 'm1', $key)->{status}, 200, '1 GET 200');
is(api('HEAD', 'm1', $key)->{status}, 200, '1 HEAD 200');
is(api('PUT', 'm1', $key, '{}')->{status}, 405, '1 PUT 405');
is(api('GET', 'm1', undef)->{status}, 401, '1 GET 401 (no key)');
is(api('PATCH', 'm1', $key, '{"name":')->{status}, 400, '1 PATCH 400 INVALID_JSON');
is(api('PATCH', 'm1', $key, { name => 'M 1' })->{status}, 200, '1 PATCH 200 that changes nothing');
is(api('GET', '/api/v1/nowhere', $key)->{status}, 404, '1 GET 404 on no route');
# over the largest limit of the location (1m): nginx refuses it before the
# rewrite phase, the error filter routes it and writes the envelope
is(api('PATCH', 'm1', $key, '{"name":"' . ('x' x 1_100_000) . '"}')->{status}, 413, '1 PATCH 413 (nginx\'s own, rewritten)');
my $ik = { headers => { 'Idempotency-Key' => 'idem-metrics-1' } };
is(api('PATCH', 'm2', $key, { phone => '+1 555 0101' }, %$ik)->{status}, 200, 'a keyed write');
my $rep = api('PATCH', 'm2', $key, { phone => '+1 555 0101' }, %$ik);
is($rep->{headers}{'idempotent-replayed'}, 'true', 'its replay');
is(api('POST', '/api/v1/customers/m3/notes', $key, { note => 'hi' })->{status}, 201, 'a note');
is(api('DELETE', 'm3', $key)->{status}, 200, 'a delete');
# a script's own refusal (SD_NO_CUSTOMER): an answer, not a Redis error
is(api('POST', '/api/v1/customers/nobody/notes', $key, { note => 'hi' })->{status}, 404, 'a note for nobody');

# a bad key: looked up once (a miss), then refused from the cache
is(api('GET', 'm1', 'sdk_unknown')->{status}, 401, 'a bad key') for 1 .. 2;

my $m1 = settled();
is(sum_of($m1, 'supportdesk_http_requests_total'), $SENT, "every request counted once ($SENT)");
is_deeply($m1->{problems}, [], 'the exposition parses after traffic');
my %want = (
    "$C PATCH 200" => 6, "$C GET 404" => 1, "$C GET 200" => 1, "$C HEAD 200" => 1,
    "$C PUT 405" => 1, "$C GET 401" => 3, "$C PATCH 400" => 1, "$C PATCH 413" => 1,
    "$C DELETE 200" => 1, "/customers/{externalId}/notes POST 201" => 1,
    "/customers/{externalId}/notes POST 404" => 1,
    'unmatched GET 404' => 1,
);
my %got;
for my $k (keys %{ $m1->{v} }) {
    next unless $k =~ /^supportdesk_http_requests_total\{code=(\d+),method=(\w+),route=(.*)\}$/;
    $got{"$3 $2 $1"} = $m1->{v}{$k};
}
is_deeply(\%got, \%want, 'supportdesk_http_requests_total: exactly the requests sent, by route, method, status');

is(val($m1, 'supportdesk_http_errors_total', route => $C, method => 'GET', code => 404, error => 'CUSTOMER_NOT_FOUND'), 1,
   'errors: CUSTOMER_NOT_FOUND');
is(val($m1, 'supportdesk_http_errors_total', route => 'unmatched', method => 'GET', code => 404, error => 'NOT_FOUND'), 1,
   'errors: NOT_FOUND for no route');
is(val($m1, 'supportdesk_http_errors_total', route => $C, method => 'GET', code => 401, error => 'UNAUTHORIZED'), 3,
   'errors: UNAUTHORIZED');
is(val($m1, 'supportdesk_http_errors_total', route => $C, method => 'PATCH', code => 400, error => 'INVALID_JSON'), 1,
   'errors: INVALID_JSON');
is(val($m1, 'supportdesk_http_errors_total', route => $C, method => 'PATCH', code => 413, error => 'PAYLOAD_TOO_LARGE'), 1,
   'errors: nginx\'s own 413 as the filter rewrote it');
is(val($m1, 'supportdesk_http_errors_total', route => $C, method => 'PUT', code => 405, error => 'METHOD_NOT_ALLOWED'), 1,
   'errors: METHOD_NOT_ALLOWED');
is(sum_of($m1, 'supportdesk_http_errors_total', code => 200), 0, 'no error series for a success');

# every route's histogram counts its requests, bucket by bucket up to +Inf
for my $route ($C, '/customers/{externalId}/notes', 'unmatched') {
    my $n = sum_of($m1, 'supportdesk_http_requests_total', route => $route);
    is(val($m1, 'supportdesk_http_request_duration_seconds_count', route => $route), $n,
       "request duration _count of $route equals its requests ($n)");
    is(val($m1, 'supportdesk_http_request_duration_seconds_bucket', route => $route, le => '+Inf'), $n,
       "... and its +Inf bucket");
}
my @b = map { val($m1, 'supportdesk_http_request_duration_seconds_bucket', route => $C, le => $_) }
    qw(0.001 0.0025 0.005 0.01 0.025 0.05 0.075 0.1 0.25 0.5 0.75 1 2.5 5 7.5 10 +Inf);
is_deeply([sort { $a <=> $b } @b], \@b, 'buckets are cumulative');
is(val($m1, 'supportdesk_redis_command_duration_seconds_count'),
   val($m1, 'supportdesk_redis_command_duration_seconds_bucket', le => '+Inf'), 'Redis histogram: _count is +Inf');
# 2 key lookups, 12 commands of requests; the job runners' polls besides
cmp_ok(val($m1, 'supportdesk_redis_command_duration_seconds_count'), '>=', 14,
       'Redis histogram: every command (key lookups, writes, reads)');
cmp_ok(val($m1, 'supportdesk_redis_command_duration_seconds_sum'), '>', 0, 'Redis histogram: a sum');

is(val($m1, 'supportdesk_key_cache_lookups_total', result => 'miss'), 2, 'key cache: 2 misses (the key, the bad key)');
is(val($m1, 'supportdesk_key_cache_lookups_total', result => 'negative'), 1, 'key cache: the bad key refused from the cache once');
# the 405, the 401 without a key, no route and nginx's 413 never look up
is(val($m1, 'supportdesk_key_cache_lookups_total', result => 'hit'), 12, 'key cache: the other 12 keyed requests hit');
# 3 creates, the keyed phone change, the note, the delete; not the update
# that changed nothing, not the replay
is(val($m1, 'supportdesk_events_appended_total'), 6, 'events appended: 6');
is(val($m1, 'supportdesk_idempotent_replays_total'), 1, 'idempotent replays: 1');
is(val($m1, 'supportdesk_redis_pending_commands'), 0, 'no command pending when idle');
# every kind is there from the start; none counted yet (the note for nobody
# was a script's refusal)
my @kinds = qw(connect closed timeout admission loading busy masterdown readonly noauth
               wrongpass noperm oom clusterdown tryagain noreplicas misconf noscript err other);
is_deeply([sort map { $_->[1] } grep { $_->[0] eq 'kind' } @{ $m1->{labels} }],
          [sort @kinds, qw(moved ask)], 'errors_total kinds and redirects_total kinds, each once');
is(sum_of($m1, 'supportdesk_redis_errors_total'), 0, 'no Redis error counted after healthy traffic');
is(sum_of($m1, 'supportdesk_redis_redirects_total') + val($m1, 'supportdesk_redis_cluster_retries_total')
   + val($m1, 'supportdesk_redis_cluster_refreshes_total'), 0, 'one Redis: no redirect, retry or slot map refresh');

# every name the dashboard may use is exported
open my $mt, '<', "$root/dashboards/metrics.txt" or die "metrics.txt: $!";
my @names = grep { /\S/ && !/^\s*#/ } map { s/\s+\z//r } <$mt>;
ok(@names >= 15, 'dashboards/metrics.txt lists the names');
my %series = map { /^([^{]+)/; $1 => 1 } keys %{ $m1->{v} };
is_deeply([grep { !$series{$_} } @names], [], 'every name of dashboards/metrics.txt is exported');
is($m1->{type}{supportdesk_http_request_duration_seconds}, 'histogram', 'the request duration is a histogram');
is($m1->{type}{supportdesk_redis_command_duration_seconds}, 'histogram', 'the Redis duration is a histogram');
is_deeply([grep { /_total$/ && ($m1->{type}{$_} // '') ne 'counter' } keys %{ $m1->{type} }], [],
          'every _total is a counter');
is_deeply([grep { $m1->{type}{$_} eq 'counter' && !/_total$/ } keys %{ $m1->{type} }], [],
          'every counter ends in _total');
$env->promtool_ok($m1->{text}, 'after traffic');

# README's example alerts: valid rules, over metrics the module exports
{
    open my $rd, '<', "$root/README.md" or die "README.md: $!";
    my $readme = do { local $/; <$rd> };
    my ($rules) = $readme =~ /^Example alerts .*?^```yaml\n(.*?)^```$/ms;
    ok($rules, 'README has example alerts');
    my $file = $env->tmp . '/alerts.yml';
    open my $fh, '>', $file or die "$file: $!";
    print $fh $rules // '';
    close $fh;
    my $out = `promtool check rules $file 2>&1`;
    is($? >> 8, 0, 'promtool check rules: README\'s example alerts') or diag($out);
    (my $exprs = $rules // '') =~ s/^\s*#.*\n//mg;    # comments name directives
    my %used = map { $_ => 1 } $exprs =~ /\b(supportdesk_[a-z_]+)/g;
    cmp_ok(scalar(keys %used), '>=', 3, 'the alerts name metrics');
    is_deeply([grep { !$series{$_} } sort keys %used], [], 'every metric the alerts name is exported');
}

# ---------------------------------------------------------------- two workers
# enough concurrent requests that both workers serve some; the counts are
# their sum
SKIP: {
    skip 'one process (SD_MASTER_PROCESS=off)', 3 if $single;
    my $log = $env->tmp . '/metrics.log';
    my $skip_lines = () = do { open my $lf, '<', $log or die; <$lf> };
    my $before = req_count(settled(), $C, 'GET', 200);
    my (%pids, $sent);
    $sent = 0;
    for my $round (1 .. 20) {
        my @res = $env->parallel([map { $env->http_bytes('GET', '/api/v1/customers/m1',
                                                          headers => { 'X-API-Key' => $key }) } 1 .. 40]);
        $sent += grep { $_->{status} == 200 } @res;
        $SENT += @res;
        open my $lf, '<', $log or die;
        my @lines = <$lf>;
        %pids = map { (split / /)[0] => 1 } grep { m{ GET /api/v1/customers/m1$} } @lines[$skip_lines .. $#lines];
        last if keys %pids >= 2;
    }
    is(scalar(keys %pids), 2, 'both workers served the GETs') or diag("pids: @{[keys %pids]}");
    is($sent % 40, 0, 'every GET answered 200');
    is(req_count(settled(), $C, 'GET', 200) - $before, $sent,
       "supportdesk_http_requests_total: $sent more, summed over both workers");
}

# ---------------------------------------------------------------- the variables
{
    open my $lf, '<', $env->tmp . '/metrics.log' or die;
    my @lines = <$lf>;
    my ($get) = grep { m{ 200 "/customers/\{externalId\}" \S+ GET /api/v1/customers/m1$} } @lines;
    like($get // '', qr{ \d+\.\d{3} GET }, '$supportdesk_redis_time: seconds to the millisecond');
    my ($none) = grep { m{ 404 \S+ \S+ GET /api/v1/nowhere$} } @lines;
    like($none // '', qr{ 404 "-" - GET}, 'no route: $supportdesk_route and $supportdesk_redis_time are empty');
    my ($bad) = grep { m{ 401 \S+ \S+ GET /api/v1/customers/m1$} } @lines;
    like($bad // '', qr{ 401 "/customers/\{externalId\}" - GET}, 'a 401 without Redis: no Redis time');
    my ($note) = grep { m{ POST /api/v1/customers/m3/notes$} } @lines;
    like($note // '', qr{ 201 "/customers/\{externalId\}/notes" \d+\.\d{3} }, 'the notes route\'s template');
    unlike(join('', @lines), qr{"/customers/m\d}, 'no raw path in $supportdesk_route');
}

# ---------------------------------------------------------------- the location
{
    my $h = $env->request('HEAD', '/metrics');
    is($h->{status}, 200, 'HEAD /metrics: 200');
    is($h->{body} // '', '', '... without a body');
    for my $method (qw(POST PUT DELETE PATCH)) {
        my $x = $env->request($method, '/metrics', body => 'x');
        is($x->{status}, 405, "$method /metrics: 405");
        is($x->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');
    }
}

# ---------------------------------------------------------------- labels
# hostile paths: never a label; every label value is one the module knows
sent_request('GET', '/api/v1/customers/a%22b%5Cc%0Ad', headers => { 'X-API-Key' => $key });
sent_request('GET', '/api/v1/x"y\\z', headers => { 'X-API-Key' => $key });
sent_request('GET', '/api/v1/customers/%22%7D%7B/notes', headers => { 'X-API-Key' => $key });
my $m2 = settled();
is_deeply($m2->{problems}, [], 'the exposition parses after hostile paths');
my %allowed_route = map { $_ => 1 } ('unmatched', $C, '/customers', '/customers/bulk-update',
    '/customers/{externalId}/notes', '/customers/{externalId}/notes/{noteId}',
    '/customers/{externalId}/notifications', '/jobs/{jobId}', '/events');
is_deeply([grep { $_->[0] eq 'route' && !$allowed_route{ $_->[1] } } @{ $m2->{labels} }], [],
          'route labels are templates or "unmatched", never a path');
is_deeply([grep { $_->[1] =~ /acme|sdk_|m\d|nobody/ } @{ $m2->{labels} }], [],
          'no label carries an app, a key or a customer id');
is(val($m2, 'supportdesk_http_requests_total', route => 'unmatched', method => 'GET', code => 404), 2,
   'the unmatched hostile path is counted as unmatched');
$env->promtool_ok($m2->{text}, 'after hostile paths');

# ---------------------------------------------------------------- a bulk-update job
{
    my $res = api('POST', '/api/v1/customers/bulk-update', $key,
                        { filter => {}, set => { metadata => { plan => 'gold' } } });
    is($res->{status}, 202, 'a bulk-update job');
    my $id = $res->{json}{data}{jobId};
    ok(wait_until(sub {
        my $j = api('GET', "/api/v1/jobs/$id", $key);
        ($j->{json}{data}{job}{status} // '') eq 'done';
    }, 20, 0.1), 'the job is done');
    my $m = scrape();
    is(val($m, 'supportdesk_jobs_started_total'), 1, 'jobs started: 1');
    is(val($m, 'supportdesk_jobs_finished_total', status => 'done'), 1, 'jobs finished: 1 done');
    is(val($m, 'supportdesk_jobs', status => 'running'), 0, 'jobs running: none now');
    # two customers are left (m1, m2), each changed once by the job
    is(val($m, 'supportdesk_events_appended_total'), 8, 'events appended: the job\'s 2 more');
}

# ---------------------------------------------------------------- Redis faults
{
    # paused: a command waits, then times out
    $env->pause_redis;
    my $started = time;
    my @sock = map {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->port, Proto => 'tcp');
        print $s $env->http_bytes('GET', '/api/v1/customers/m1', headers => { 'X-API-Key' => $key });
        $s
    } 1 .. 2;
    $SENT += 2;
    my $pending = 0;
    wait_until(sub { $pending = val(scrape(), 'supportdesk_redis_pending_commands'); $pending >= 2 }, 2.5, 0.05);
    cmp_ok($pending, '>=', 2, "pending commands while Redis is paused: $pending");
    ok(wait_until(sub { val(scrape(), 'supportdesk_redis_errors_total', kind => 'timeout') >= 1 }, 10, 0.1),
       'a timeout is counted');
    $env->resume_redis;
    close $_ for @sock;
    ok(wait_until(sub { my $m = scrape();
                        val($m, 'supportdesk_redis_connections', state => 'connected') == $CONNS
                        && val($m, 'supportdesk_redis_pending_commands') == 0 }, 10, 0.1),
       "back: $CONNS connected, nothing pending");

    # killed: connections lost, requests refused at once while none is up
    my $m = scrape();
    my %e0 = map { $_ => val($m, 'supportdesk_redis_errors_total', kind => $_) } qw(closed connect admission);
    $env->kill_redis;
    ok(wait_until(sub { val(scrape(), 'supportdesk_redis_connections', state => 'connected') == 0 }, 5, 0.05),
       'Redis killed: no connection connected');
    my $r503 = api('GET', 'm1', $key);
    is($r503->{status}, 503, 'a request while Redis is down: 503');
    $m = scrape();
    cmp_ok(val($m, 'supportdesk_redis_errors_total', kind => 'closed') - $e0{closed}, '>=', $CONNS,
           "errors{kind=\"closed\"}: the $CONNS connections lost");
    cmp_ok(val($m, 'supportdesk_redis_errors_total', kind => 'connect') - $e0{connect}
           + val($m, 'supportdesk_redis_errors_total', kind => 'admission') - $e0{admission}, '>=', 1,
           'errors: reconnects failing, or the request refused at once');
    is(sum_of($m, 'supportdesk_redis_connections'), $CONNS, 'the connections of every worker, in some state');
    $env->start_redis;
    ok(wait_until(sub { val(scrape(), 'supportdesk_redis_connections', state => 'connected') == $CONNS }, 10, 0.1),
       "Redis back: $CONNS connected");
}

# ---------------------------------------------------------------- error replies by code
{
    # Redis came back empty: the key again (the cache may have it or not)
    $env->create_key('acme', 'metrics', $key);
    my $r = $env->redis;
    my $m = scrape();
    my %e0 = map { $_ => val($m, 'supportdesk_redis_errors_total', kind => $_) } @kinds;

    # the scripts flushed: a script call answers NOSCRIPT, the pool loads
    # the connection's scripts again and sends it once more
    $r->script('flush');
    is(api('PATCH', "f$_", $key, { email => "f$_\@acme.com", name => "F $_" })->{status}, 200, "a write after SCRIPT FLUSH ($_)")
        for 1 .. 2;
    $m = scrape();
    cmp_ok(val($m, 'supportdesk_redis_errors_total', kind => 'noscript') - $e0{noscript}, '>=', 1,
           'errors{kind="noscript"}: the flushed scripts');

    # out of memory: the write refused (503), counted by its code
    $r->config('set', 'maxmemory', 1);
    my $oom = api('PATCH', 'f1', $key, { name => 'Out of memory' });
    $r->config('set', 'maxmemory', 0);
    is($oom->{status}, 503, 'a write while Redis is out of memory: 503');
    $m = scrape();
    is(val($m, 'supportdesk_redis_errors_total', kind => 'oom') - $e0{oom}, 1, 'errors{kind="oom"}: 1');
    is_deeply({ map { $_ => val($m, 'supportdesk_redis_errors_total', kind => $_) - $e0{$_} }
                grep { !/^(?:noscript|oom)$/ } @kinds },
              { map { $_ => 0 } grep { !/^(?:noscript|oom)$/ } @kinds }, 'no other kind counted');
    is(api('PATCH', 'f1', $key, { name => 'Room again' })->{status}, 200, 'room again: 200');
    $env->promtool_ok($m->{text}, 'after Redis errors');
}

# ---------------------------------------------------------------- a reload keeps the counters
SKIP: {
    skip 'one process (SD_MASTER_PROCESS=off): no reload, no worker to kill', 10 if $single;
    my $n = sum_of(settled(), 'supportdesk_http_requests_total');
    is($n, $SENT, "before the reload: every request counted once ($SENT)");
    my @old = $env->worker_pids;
    $env->reload_nginx;
    ok(wait_until(sub { my @w = $env->worker_pids; @w == 2 && !grep { my $o = $_; grep { $_ == $o } @w } @old }, 10, 0.1),
       'reloaded: two new workers');
    ok(wait_until(sub { val(scrape(), 'supportdesk_redis_connections', state => 'connected') == $CONNS }, 10, 0.1),
       'after the reload: the new workers\' 4 connections only');
    my $m2 = scrape();
    is(sum_of($m2, 'supportdesk_http_requests_total'), $n, 'the request counters went on across the reload');
    is(val($m2, 'supportdesk_idempotent_replays_total'), 1, 'so did the others');

    # a worker killed: its slot's gauges are not summed any more
    my ($victim) = $env->worker_pids;
    $env->allow_log(qr/\[alert\] \d+#\d+: worker process $victim exited on signal 9$/);
    $env->allow_log(qr/shared memory zone "supportdesk_(?:keys|metrics)" was locked by $victim/, maybe => 1);
    kill 'KILL', $victim;
    ok(wait_until(sub { my @w = $env->worker_pids; @w == 2 && !grep { $_ == $victim } @w }, 10, 0.1),
       'the killed worker was replaced');
    ok(wait_until(sub { val(scrape(), 'supportdesk_redis_connections', state => 'connected') == $CONNS }, 10, 0.1),
       'connections: 4, the killed worker\'s not counted');
    my $m3 = scrape();
    is(sum_of($m3, 'supportdesk_redis_connections'), 4, 'and no more than 4 in all');
    # its replacement counts on where it left off: counters never go back
    is(sum_of($m3, 'supportdesk_http_requests_total'), $n, 'the killed worker\'s requests are still counted');
    is(val($m3, 'supportdesk_idempotent_replays_total'), 1, 'so are its other counters');
}

# ---------------------------------------------------------------- the key lookup rate
# unknown keys past supportdesk_key_lookup_rate (1 a second): 401 without a
# lookup, counted as limited; the 10 come at once, so at most one lookup a
# second they span
{
    my $lim = SupportDesk::Test->new(
        http_conf   => 'supportdesk_key_lookup_rate 1;',
        server_conf => 'location = /metrics { supportdesk_metrics; }',
    );
    my @res = $lim->parallel([map { $lim->http_bytes('GET', '/api/v1/customers/x',
                                                     headers => { 'X-API-Key' => "sdk_flood$_" }) } 1 .. 10]);
    is_deeply([map { $_->{status} } @res], [(401) x 10], '10 unknown keys at once: 401');
    my $r = $lim->request('GET', '/metrics');
    my ($v) = parse_metrics($r->{body});
    my %k = map { $_ => $v->{"supportdesk_key_cache_lookups_total{result=$_}"} // 0 } qw(hit negative miss limited);
    is($k{miss} + $k{limited}, 10, "each unknown key a miss or limited (miss $k{miss}, limited $k{limited})");
    cmp_ok($k{limited}, '>=', 1, 'past the lookup rate: limited, without a lookup');
    is($k{hit} + $k{negative}, 0, 'none from the cache');
}

# ---------------------------------------------------------------- without metrics
{
    my $plain = SupportDesk::Test->new(
        http_conf => q{log_format sdm '$status "$supportdesk_route" $supportdesk_redis_time';
                       access_log %TMP%/plain.log sdm;});
    my $k = $plain->create_key('acme', 'plain');
    is($plain->api('GET', 'x', $k)->{status}, 404, 'no metrics location: served');
    is($plain->request('GET', '/metrics')->{body}, "legacy\n", 'and /metrics is the legacy location');
    open my $lf, '<', $plain->tmp . '/plain.log' or die;
    my @l = <$lf>;
    like($l[0] // '', qr{^404 "/customers/\{externalId\}" \d+\.\d{3}$}, 'the variables work without metrics');
}

# ---------------------------------------------------------------- nginx -t
{
    my ($rc, $out, $n) = $env->nginx_t('server { listen 127.0.0.1:1; location /m { supportdesk_metrics on; } }', http_body => 1);
    isnt($rc, 0, 'supportdesk_metrics takes no argument');
    $env->allow_log(qr/\[emerg\] .*"supportdesk_metrics"/, file => qr/^t$n\.(?:err|out)\z/);
    ($rc, $out, $n) = $env->nginx_t('server { listen 127.0.0.1:1; location /m { supportdesk; supportdesk_metrics; } }', http_body => 1);
    isnt($rc, 0, 'supportdesk_metrics in a supportdesk location is refused');
    like($out, qr/"supportdesk_metrics" directive cannot be combined with "supportdesk"/, '... saying why');
    $env->allow_log(qr/\[emerg\] .*"supportdesk_metrics"/, file => qr/^t$n\.(?:err|out)\z/);
}

done_testing;
