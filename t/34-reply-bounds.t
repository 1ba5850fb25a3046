# A misbehaving Redis cannot make a worker buffer or allocate without bound:
# a reply over supportdesk_redis_max_reply_size bytes (a bulk string or a
# line announced and never finished, or strings that add up) or over
# supportdesk_redis_max_reply_elements elements (all its arrays together),
# or a line (status, error, integer, length) of more than 64 KiB, is
# a protocol error: the connection is dropped, its requests get 503, it is
# logged, the worker stays small and keeps serving.
# Configuration: Redis is a scripted fake (t/lib/SupportDesk/FakeRedis.pm):
# location /api/v1/ { supportdesk_redis <fake>; } with the default bounds,
# location /api/small/ with supportdesk_redis_max_reply_size 64k and
# supportdesk_redis_max_reply_elements 16; supportdesk_redis_timeout 5s.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok wait_until single_redis_only plain_pass_only pct);
use SupportDesk::FakeRedis;
use MIME::Base64 qw(encode_base64);

single_redis_only('its Redis is SupportDesk::FakeRedis, one scripted server (the cluster\'s scripted corners: t/72-cluster-fake.t)');
plain_pass_only('its Redis is SupportDesk::FakeRedis, a scripted plaintext server: TLS would change nothing it checks');

my $MB = 1024 * 1024;
sub bulk { '$' . length($_[0]) . "\r\n$_[0]\r\n" }
sub array { '*' . scalar(@_) . "\r\n" . join '', map { bulk($_) } @_ }
my @customer = (s => 1, e => 'a@example.com', n => 'A', c => 1700000000, u => 1700000000);

# what the fake answers to HGETALL sd:{acme}:c:<externalId>
my %reply = (
    ok         => "*0\r\n",
    slow_ok    => { head => "*0\r\n", delay => 0.5 },
    huge_bulk  => { head => "\$999999999\r\n", fill => 300 * $MB },
    long_line  => { head => '+', fill => 300 * $MB },
    huge_array => "*2147483647\r\n",
    nested     => "*65536\r\n*65536\r\n",
    fields_16  => array(@customer, p => '123', a => 'https://example.com/a.png', m => '{}'),
    fields_18  => array(@customer, p => '123', a => 'https://example.com/a.png', m => '{}', x => 'y'),
    name_60k   => array(@customer[0 .. 3], n => 'N' x 60000, @customer[6 .. 9]),
    strings    => array(map { ('f' . $_ => 'v' x 16384) } 1 .. 5),
);
# what the fake answers to the list script (redis/list.lua: one string,
# cmsgpack.pack() of {total, cursor, externalId, {values}, ...}), by the
# name filter of GET /customers?name=<case>
sub mp_str { chr(0xa0 + length $_[0]) . $_[0] }
sub mp_arr { chr(0x90 + @_) . join '', @_ }
my $page = mp_arr("\x01", mp_str(''), mp_str('x1'),
                  mp_arr(map { defined $_ ? mp_str($_) : "\xc2" }
                         '7', 'a@example.com', 'A', undef, undef, '{"k":1}',
                         '1700000000', '1700000001', '2'));
my %list = (
    pageok      => bulk($page),
    pagecut     => bulk(substr($page, 0, -1)),
    pagelonger  => bulk($page . "\x01"),
    pagemap     => bulk("\x81" . mp_str('k') . "\x01"),
    pagevalues8 => bulk(mp_arr("\x01", mp_str(''), mp_str('x1'),
                               mp_arr(map { mp_str('v') } 1 .. 8))),
    pagenested  => bulk(mp_arr("\x01", mp_str(''), mp_str('x1'),
                               mp_arr(mp_arr(), map { mp_str('v') } 1 .. 8))),
    pageresp    => array('1', '', 'x1'),
);
# what the fake answers to redis/upsert.lua (one string, cmsgpack.pack()
# of {wasCreated, field/value pairs}), by the customer's externalId
sub mp_pairs { mp_arr(map { mp_str($_) } @_) }
my @pairs = (s => '7', e => 'a@example.com', n => 'A', c => '1700000000',
             u => '1700000001', v => '2');
my $answer = mp_arr("\x01", mp_pairs(@pairs));
my %upsert = (
    upok       => bulk($answer),
    upupdated  => bulk(mp_arr("\x00", mp_pairs(@pairs, p => '123'))),
    upcut      => bulk(substr($answer, 0, -1)),
    uplonger   => bulk($answer . "\x01"),
    upcreated2 => bulk(mp_arr("\x02", mp_pairs(@pairs))),
    upodd      => bulk(mp_arr("\x01", mp_pairs(@pairs, 'p'))),
    upmany     => bulk(mp_arr("\x01", "\xdc\x00\x14" . join '', map { mp_str('x') } 1 .. 20)),
    upinteger  => bulk(mp_arr("\x01", mp_arr(mp_str('s'), "\x07"))),
    upnil      => bulk(mp_arr("\x01", mp_arr(mp_str('p'), "\xc2"))),
    upmap      => bulk("\x81" . mp_str('k') . "\x01"),
    upthree    => bulk(mp_arr("\x01", mp_pairs(@pairs), "\x01")),
);
# a page without a filter is plain commands (ngx_http_supportdesk_list.c):
# GET seq and GET order:n, then the order bucket's HMGET from the cursor's
# next sequence number, which picks the case, then one HGETALL a customer
sub cust { my ($s) = @_; array(s => $s, e => 'p@example.com', n => 'P', c => 1700000000, u => 1700000000) }
# (limit 1: 13 sequence numbers asked, within one bucket of 128 from
# these, the first named, the rest nil)
sub ids { array($_[0], ('') x 12) }
my %ids = (
    1   => ids('p_ok'),
    201 => "*1\r\n\$-1\r\n",
    301 => ":7\r\n",
    401 => ids('p_odd'),
    521 => ids('p_loading'),
    601 => ids('p_stale'),
    701 => ids('p_gone'),
);
$ids{$_} =~ s/\$0\r\n\r\n/\$-1\r\n/g for keys %ids;    # '' stands for nil
my %plain = (
    p_ok      => cust(1),
    p_odd     => "*3\r\n\$1\r\ns\r\n\$3\r\n401\r\n\$1\r\ne\r\n",
    p_loading => "-LOADING Redis is loading the dataset in memory\r\n",
    p_stale   => cust(5),
    p_gone    => "*0\r\n",
);
my $fake = SupportDesk::FakeRedis->new(respond => sub {
    my ($cmd) = @_;
    my $name = uc $cmd->[0];
    return "\$3\r\n999\r\n" if $name eq 'GET' && $cmd->[1] eq 'sd:{acme}:seq';
    return "\$1\r\n5\r\n" if $name eq 'GET' && $cmd->[1] eq 'sd:{acme}:order:n';
    return $ids{ $cmd->[2] } if $name eq 'HMGET' && $cmd->[1] =~ /^sd:\{acme\}:order:\d+\z/ && $ids{ $cmd->[2] // '' };
    return $plain{$1} if $name eq 'HGETALL' && $cmd->[1] =~ /^sd:\{acme\}:c:(p_\w+)\z/ && $plain{$1};
    return $upsert{$1} // "\$-1\r\n"
        if $name eq 'EVALSHA' && ($cmd->[6] // '') =~ /^sd:\{acme\}:c:(up\w+)\z/;
    return $list{$cmd->[10]} // "\$-1\r\n"
        if $name eq 'EVALSHA' && ($cmd->[3] // '') eq 'sd:{acme}:order';
    return "\$4\r\nacme\r\n" if $name eq 'HGET' && $cmd->[1] =~ /^sd:apikey:/;
    return $reply{$1} // "*0\r\n" if $name eq 'HGETALL' && $cmd->[1] =~ /^sd:\{acme\}:c:(.*)/;
    return undef;
});
my $fp = $fake->port;

my $env = SupportDesk::Test->new(
    redis_timeout => '5s',
    location_conf => "supportdesk_redis 127.0.0.1:$fp;",
    server_conf   => "location /api/small/ { supportdesk; supportdesk_redis 127.0.0.1:$fp;"
                   . " supportdesk_redis_max_reply_size 64k; supportdesk_redis_max_reply_elements 16; }",
);
my $key = 'sdk_any_key_the_fake_knows';
my ($worker) = $env->worker_pids;

sub get { my ($ext, $loc, %o) = @_; $env->api('GET', '/api/' . ($loc // 'v1') . "/customers/$ext", $key, undef, timeout => 10, %o) }
sub log_count { my $re = shift; scalar(() = $env->nginx_error_log =~ /$re/g) }
sub status_kb {
    my ($field) = @_;
    open my $fh, '<', "/proc/$worker/status" or return 0;
    while (<$fh>) { return $1 if /^\Q$field\E:\s+(\d+) kB/ }
    return 0;
}
my $SIZE  = qr/\[error\] .*supportdesk: redis 127\.0\.0\.1:$fp sent a reply of more than (\d+) bytes \(supportdesk_redis_max_reply_size\), dropping the connection/;
my $ELEMS = qr/\[error\] .*supportdesk: redis 127\.0\.0\.1:$fp sent a reply of more than (\d+) elements \(supportdesk_redis_max_reply_elements\), dropping the connection/;
# a connection dropped backs off before it reconnects (50 ms, doubling):
# meanwhile requests get 503 at once, without asking the fake
sub all_connected {
    my ($name) = @_;
    ok(wait_until(sub { $fake->ready == 4 }, 5), "$name: both pools connected");
}
sub dropped_ok {
    my ($name, $ext, $loc, $re, $bound) = @_;
    all_connected($name);
    my $before = log_count($re);
    my $t = time;
    my $r = get($ext, $loc);
    envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', "$name: 503");
    diag sprintf "%s: answered in %.3f s", $name, time - $t;
    ok(wait_until(sub { log_count($re) > $before }, 2), "$name: logged");
    my @b = $env->nginx_error_log =~ /$re/g;
    is($b[-1], $bound, "$name: the log names the bound ($bound)");
}

envelope_ok(get('ok'), 404, 'CUSTOMER_NOT_FOUND', 'a well-formed reply is served');
my $base = status_kb('VmRSS');
diag "worker RSS at start: $base kB";

# ---- the default bounds: 16 MiB, 65536 elements
dropped_ok('$999999999 and 300 MiB behind it', 'huge_bulk', 'v1', $SIZE, 16 * $MB);
my $LINE = qr/\[error\] .*supportdesk: redis 127\.0\.0\.1:$fp sent a reply line of more than (\d+) bytes, dropping the connection/;
dropped_ok('a status line of 300 MiB without its end', 'long_line', 'v1', $LINE, 65536);
dropped_ok('*2147483647', 'huge_array', 'v1', $ELEMS, 65536);
dropped_ok('an array of 65536 arrays of 65536', 'nested', 'v1', $ELEMS, 65536);
my $peak = status_kb('VmHWM');
diag "worker peak RSS: $peak kB (at start $base kB)";
SKIP: {
    # memcheck's bookkeeping, ASan's quarantine of freed memory count in
    # the process's RSS
    skip 'nginx runs under valgrind or ASan', 1 if SupportDesk::Test::nginx_bin() =~ m{/(?:valgrind|asan)/};
    cmp_ok($peak, '<', $base + 48 * 1024, 'the worker\'s peak RSS stayed within 48 MiB of its start');
}

# a bad reply on one Redis connection does not hold up a request on another:
# the fake holds slow_ok's reply 0.5 s; huge_array's request is sent once
# the fake has slow_ok's command, so in a later turn of the event
# loop, and goes to the connection with nothing pending (in the same turn it
# would join the first's send, and fail with it)
all_connected('before two requests side by side');
# the fake counts a connection once it has the handshake, nginx picks the
# connection with the fewest commands pending: until nginx has read the
# handshake's replies, both requests would go to the other connection
sleep 0.5;
{
    my $sent = sub { scalar grep { /HGETALL sd:\{acme\}:c:(?:slow_ok|huge_array)/ } $fake->commands };
    my $before = $sent->();
    my @r = $env->parallel([ map { $env->http_bytes('GET', "/api/v1/customers/$_", headers => { 'X-API-Key' => $key }) }
                             qw(huge_array slow_ok) ], timeout => 10,
                           send_when => [ sub { grep { /HGETALL sd:\{acme\}:c:slow_ok/ } $fake->commands }, undef ]);
    is($sent->() - $before, 2, 'two requests side by side: both commands reached the fake');
    envelope_ok($r[0], 503, 'SERVICE_UNAVAILABLE', '*2147483647 beside another request: 503');
    envelope_ok($r[1], 404, 'CUSTOMER_NOT_FOUND', '... the other request is answered');
    cmp_ok($r[1]{elapsed}, '<', 1.5, '... when its reply came (held 0.5 s), long before the timeout (5 s)')
        or diag "after $r[1]{elapsed} s";
    diag sprintf 'the other request: %.3f s', $r[1]{elapsed};
}

# ---- configured bounds, at the limit and past it
my $r = get('fields_16', 'small');
envelope_ok($r, 200, undef, '16 elements with max_reply_elements 16: served');
is($r->{json}{data}{customer}{phone}, '123', '... the customer is rendered');
dropped_ok('18 elements with max_reply_elements 16', 'fields_18', 'small', $ELEMS, 16);
# a name no API write could store (255 at most): out of the OpenAPI check
$r = get('name_60k', 'small', unrecorded => 'a name the fake made up');
envelope_ok($r, 200, undef, 'a 60,000-byte string with max_reply_size 64k: served');
is(length($r->{json}{data}{customer}{name} // ''), 60000, '... whole');
dropped_ok('five 16 KiB strings with max_reply_size 64k', 'strings', 'small', $SIZE, 64 * 1024);
dropped_ok('$999999999 with max_reply_size 64k', 'huge_bulk', 'small', $SIZE, 64 * 1024);

# ---- the worker is the same and serves on
all_connected('at the end');
# a list page is walked in place (ngx_http_supportdesk_list.c): a good one
# is rendered; any page that is not exactly one well-formed value is a 500
# with its log line, never a customer made up of what was read so far
sub list { $env->api('GET', "/api/v1/customers?name=$_[0]", $key, undef, timeout => 10) }
$r = list('pageok');
envelope_ok($r, 200, undef, 'list: a page from the fake, rendered');
is_deeply($r->{json}{data}{customers},
          [ { id => 'cus_7', externalId => 'x1', email => 'a@example.com', name => 'A',
              metadata => { k => 1 }, createdAt => '2023-11-14T22:13:20Z',
              updatedAt => '2023-11-14T22:13:21Z' } ],
          '... the customer, unset values left out');
is($r->{json}{data}{total}, 1, '... the total');
ok(exists $r->{json}{data}{nextCursor} && !defined $r->{json}{data}{nextCursor},
   '... no next cursor');
for my $case (qw(pagecut pagelonger pagemap pagevalues8 pagenested pageresp)) {
    my $before = log_count(qr/unexpected (?:list page|redis reply)/);
    envelope_ok(list($case), 500, 'INTERNAL_ERROR', "list: $case: 500");
    ok(wait_until(sub { log_count(qr/unexpected (?:list page|redis reply)/) > $before }, 2),
       "... logged");
}

# the plain commands' replies: a good customer rendered; a bucket reply of
# another length or type, a hash of an odd length each a 500 with its log
# line; Redis refusing (LOADING) a 503; a customer whose hash is gone, or
# names another sequence number (deleted and created again), left out of
# the page, which goes on from its cursor
sub plain_list { $env->api('GET', '/api/v1/customers?limit=1' . (defined $_[0] ? '&cursor=' . pct(cursor($_[0])) : ''), $key, undef, timeout => 10) }
sub cursor { my $c = encode_base64($_[0], ''); $c =~ tr{+/}{-_}; $c =~ s/=+\z//; $c }
$r = plain_list(undef);
envelope_ok($r, 200, undef, 'plain list: a page from the fake, rendered');
is_deeply($r->{json}{data},
          { customers => [ { id => 'cus_1', externalId => 'p_ok', email => 'p@example.com', name => 'P',
                             createdAt => '2023-11-14T22:13:20Z', updatedAt => '2023-11-14T22:13:20Z' } ],
            nextCursor => cursor('1'), total => 5 },
          '... the customer, the cursor after its sequence number, the total from order:n');
for my $c (['200', 'a bucket reply one element short'], ['300', 'a bucket reply that is an integer'],
           ['400', 'a customer hash of 3 elements']) {
    my $before = log_count(qr/unexpected (?:redis reply|customer hash)/);
    envelope_ok(plain_list($c->[0]), 500, 'INTERNAL_ERROR', "plain list: $c->[1]: 500");
    ok(wait_until(sub { log_count(qr/unexpected (?:redis reply|customer hash)/) > $before }, 2), '... logged');
}
envelope_ok(plain_list('520'), 503, 'SERVICE_UNAVAILABLE', 'plain list: LOADING on the customer\'s HGETALL: 503');
for my $c (['600', 'a hash that names another sequence number'], ['700', 'a hash gone since the bucket named it']) {
    $r = plain_list($c->[0]);
    envelope_ok($r, 200, undef, "plain list: $c->[1]: 200");
    is_deeply($r->{json}{data}{customers}, [], '... without the customer');
    is($r->{json}{data}{nextCursor}, cursor($c->[0] + 1), '... the cursor past its sequence number');
}

# an upsert's answer is read in place too (record_unpack()): the same rule
sub upsert { $env->api('PATCH', $_[0], $key, { name => 'A' }, timeout => 10) }
$r = upsert('upok');
envelope_ok($r, 200, undef, 'upsert: an answer from the fake, rendered');
is_deeply($r->{json}{data},
          { customer => { id => 'cus_7', externalId => 'upok', email => 'a@example.com', name => 'A',
                          createdAt => '2023-11-14T22:13:20Z', updatedAt => '2023-11-14T22:13:21Z' },
            wasCreated => JSON::PP::true },
          '... the customer and wasCreated');
is($r->{headers}{etag}, '"7-2"', '... its ETag from s and v');
$r = upsert('upupdated');
is_deeply([ $r->{json}{data}{customer}{phone}, $r->{json}{data}{wasCreated} ], [ '123', JSON::PP::false ],
          'upsert: an update: its phone, wasCreated false');
for my $case (qw(upcut uplonger upcreated2 upodd upmany upinteger upnil upmap upthree)) {
    my $before = log_count(qr/unexpected (?:upsert answer|redis reply)/);
    envelope_ok(upsert($case), 500, 'INTERNAL_ERROR', "upsert: $case: 500");
    ok(wait_until(sub { log_count(qr/unexpected (?:upsert answer|redis reply)/) > $before }, 2),
       "... logged");
}
$r = $env->api('PATCH', '/api/v1/customers', $key,
               { customers => [ { externalId => 'upok', name => 'A' }, { externalId => 'upcut', name => 'A' },
                                { externalId => 'upupdated', name => 'A' } ] }, timeout => 10);
envelope_ok($r, 200, undef, 'batch of three answers, one of them cut');
is_deeply([ map { [ $_->{externalId}, $_->{success} ? 'ok' : 'fail', $_->{wasCreated}, $_->{error}{code} ] }
            @{ $r->{json}{data}{results} || [] } ],
          [ [ 'upok', 'ok', JSON::PP::true, undef ], [ 'upcut', 'fail', undef, 'INTERNAL_ERROR' ],
            [ 'upupdated', 'ok', JSON::PP::false, undef ] ],
          '... the cut one failed alone, the others in order with their wasCreated');

envelope_ok(get('ok'), 404, 'CUSTOMER_NOT_FOUND', 'served after all that');
envelope_ok(get('ok', 'small'), 404, 'CUSTOMER_NOT_FOUND', 'served after all that (small)');
is_deeply([ $env->worker_pids ], [$worker], 'the same worker (no crash)');
diag sprintf 'worker RSS at the end: %d kB, peak %d kB', status_kb('VmRSS'), status_kb('VmHWM');

done_testing;
