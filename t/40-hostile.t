# Hostile input (issue 5): malformed, truncated, deeply nested and huge JSON,
# invalid UTF-8, NUL, duplicate keys, 64 KiB and chunked bodies, slow bodies,
# header injection and key-namespace escapes in externalId, another app's id
# smuggled into a payload.  Every request gets an envelope; a refused one
# changes no key at all (whole database snapshot before/after) and one that
# is accepted changes only its own customer; redis/sd-check finds both apps
# consistent after every scenario (sd-check -c in cluster mode); no worker
# crashes.
# Configuration: the harness's default, plus client_body_timeout 1s in
# location /api/v1/ (the stalled bodies).
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok error_ok fields_ok json_encode json_decode);

# client_body_timeout: the slow-body scenario
my $env = SupportDesk::Test->new(location_conf => 'client_body_timeout 1s;');
my $R = $env->redis;
my $key   = $env->create_key('acme', 'hostile tests');
my $other = $env->create_key('other', 'the other app');
my $CHECK = SupportDesk::Test::repo_root() . '/redis/sd-check';

sub api { my ($m, $ext, $body, %o) = @_; $env->api($m, $ext, $key, $body, timeout => 15, %o) }

# fixtures: one customer in each app, with the same email
is(api('PATCH', 'u1', { email => 'shared@example.com', name => 'Acme One' })->{status}, 200, 'fixture acme/u1');
is($env->api('PATCH', 'o1', $other, { email => 'shared@example.com', name => 'Other One',
    metadata => { app => 'other' } })->{status}, 200, 'fixture other/o1');

sub sd_check_ok {
    my ($name) = @_;
    my $out = `'$CHECK' -q @{[ $env->sd_check_args ]} acme other 2>&1`;
    is($? >> 8, 0, "$name: sd-check finds acme and other consistent") or diag $out;
}

# keys that differ between two snapshots
sub changed {
    my ($a, $b) = @_;
    my %k = map { $_ => 1 } keys %$a, keys %$b;
    return sort grep { json_encode($a->{$_} // []) ne json_encode($b->{$_} // []) } keys %k;
}

# a request that must be refused with the envelope and change nothing: the
# status, code and message (error_ok: the code's own message unless
# { message => ... } is given), exactly the details @fields (field names or
# [field => message]; none given: no details), no key changed
sub refused {
    my ($name, $status, $code, $do, @fields) = @_;
    my %o = map { %$_ } grep { ref $_ eq 'HASH' } @fields;
    @fields = grep { ref $_ ne 'HASH' } @fields;
    my $before = $env->snapshot;
    my $r = $do->();
    error_ok($r, $status, $code, $o{message}, $name);
    fields_ok($r, \@fields, $name, ordered => $o{ordered});
    my @c = changed($before, $env->snapshot);
    ok(!@c, "$name: no key changed") or diag "changed: @c";
    sd_check_ok($name);
    return $r;
}

# a request that must succeed and change exactly @keys
sub accepted {
    my ($name, $status, $do, @keys) = @_;
    my $before = $env->snapshot;
    my $r = $do->();
    envelope_ok($r, $status, undef, $name);
    my @c = changed($before, $env->snapshot);
    # exact names, or patterns (qr//)
    my @bad = grep { my $k = $_; !grep { ref $_ ? $k =~ $_ : $k eq $_ } @keys } @c;
    ok(!@bad, "$name: changes only its own keys") or diag "also changed: @bad";
    sd_check_ok($name);
    return $r;
}

# what any change of acme appends to: the change feed and its counter
my @FEED = ('sd:{acme}:events', 'sd:{acme}:eventseq');
# what creating or deleting a customer of acme may change besides its hash:
# the email index, the creation order (whatever its layout), the sequence,
# the feed
my @INDEX = (qr/^sd:\{acme\}:emails(:[0-9n]+)?\z/, 'sd:{acme}:seq', qr/^sd:\{acme\}:order(:[0-9n]+)?\z/, @FEED);

sub patch_raw { my ($ext, $bytes, %o) = @_; sub { api('PATCH', $ext, $bytes, %o) } }
# INVALID_JSON's reasons (ngx_http_supportdesk_parse_object)
my %BODY = (
    json     => { message => 'body is not valid JSON' },
    object   => { message => 'body must be a JSON object' },
    empty    => { message => 'body is empty' },
    utf8     => { message => 'body is not valid UTF-8' },
    nul      => { message => 'body must not contain \\u0000' },
    dup      => { message => 'body has a duplicate key' },
    deep     => { message => 'body is nested too deeply' },
    range    => { message => 'body has a number out of range' },
);
# what nginx itself answers (its 400, its 414), in the envelope
my $MALFORMED = { message => 'the request is malformed' };
my $OVER = { message => 'body is over the limit of 65536 bytes' };

# ---------------------------------------------------------------- malformed JSON
my @malformed = (
    ['unterminated object', '{'],
    ['missing value', '{"email":'],
    ['trailing comma', '{"email":"a@b.co","name":"x",}'],
    ['single quotes', "{'name':'x'}"],
    ['bare word', 'nul'],
    ['trailing garbage', '{"name":"x"} x'],
    ['two documents', '{"name":"x"}{"name":"y"}'],
    ['truncated string', '{"name":"Jo'],
    ['truncated escape', '{"name":"\\u00'],
    ['bad escape', '{"name":"\\q"}'],
    ['lone high surrogate escape', '{"name":"\\ud800"}'],
    ['lone low surrogate escape', '{"name":"\\udc00x"}'],
    ['raw control character in a string', "{\"name\":\"a\x01b\"}"],
    ['raw NUL in a string', "{\"name\":\"a\x00b\"}"],
    ['raw NUL after the object', "{\"name\":\"ab\"}\x00"],
    ['comment', '{"name":"x" /* c */}'],
    ['NaN', '{"metadata":{"n":NaN}}'],
    ['Infinity', '{"metadata":{"n":Infinity}}'],
    ['leading zero', '{"metadata":{"n":01}}'],
    ['hex number', '{"metadata":{"n":0x10}}'],
    ['body is an array', '[{"name":"x"}]', 'object'],
    ['body is a string', '"x"', 'object'],
    ['body is a number', '42', 'object'],
    ['body is null', 'null', 'object'],
    ['whitespace only', " \r\n\t ", 'empty'],
    ['BOM before the object', "\xef\xbb\xbf{\"name\":\"x\"}"],
);
for my $m (@malformed) {
    refused("malformed: $m->[0]", 400, 'INVALID_JSON', patch_raw('u1', $m->[1]), $BODY{ $m->[2] // 'json' });
}
refused('empty body with Content-Length: 0', 400, 'INVALID_JSON', sub {
    $env->raw_request("PATCH /api/v1/customers/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-API-Key: $key\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n", timeout => 15)
}, $BODY{empty});
refused('no body at all', 400, 'INVALID_JSON', sub {
    $env->raw_request("PATCH /api/v1/customers/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-API-Key: $key\r\nContent-Type: application/json\r\n\r\n", timeout => 15)
}, $BODY{empty});

# every truncation of a valid body
my $full = json_encode({ email => 'trunc@example.com', name => 'T', metadata => { a => [1, { b => 'c' }] } });
for my $len (1 .. length($full) - 1) {
    my $before = $env->snapshot;
    my $r = api('PATCH', 'u1', substr($full, 0, $len));
    my @p = SupportDesk::Test::_envelope_problems($r, 400, 'INVALID_JSON', $BODY{json}{message});
    push @p, 'details present' if SupportDesk::Test::details_of($r);
    push @p, 'keys changed: ' . join(' ', changed($before, $env->snapshot)) if changed($before, $env->snapshot);
    ok(!@p, "truncated to $len of " . length($full) . " bytes: 400 INVALID_JSON '$BODY{json}{message}', nothing changed")
        or diag join("\n", @p) . "\n$r->{status} $r->{body}";
}
sd_check_ok('truncations');

# ---------------------------------------------------------------- nesting
for my $depth (10_000, 32_000) {
    refused("arrays nested $depth deep in metadata", 400, 'INVALID_JSON',
        patch_raw('u1', '{"metadata":' . ('[' x $depth) . (']' x $depth) . '}'), $BODY{deep});
}
refused("objects nested 10000 deep", 400, 'INVALID_JSON',
    patch_raw('u1', ('{"a":' x 10_000) . '1' . ('}' x 10_000)), $BODY{deep});
refused('unbalanced: 20000 opening brackets', 400, 'INVALID_JSON', patch_raw('u1', '{"metadata":' . ('[' x 20_000)),
    $BODY{deep});
{
    # within jansson's limit, over the metadata rule (depth 8)
    my $m = '{"x":1}';
    $m = "{\"x\":$m}" for 1 .. 8;    # depth 9
    refused('metadata nested 9 levels', 400, 'VALIDATION_ERROR', patch_raw('u1', "{\"metadata\":$m}"),
        [metadata => 'must not nest deeper than 8 levels']);
}

# ---------------------------------------------------------------- numbers
for my $n ('1e400', '-1e400', '123456789012345678901234567890', '-99999999999999999999') {
    refused("number $n", 400, 'INVALID_JSON', patch_raw('u1', "{\"metadata\":{\"n\":$n}}"), $BODY{range});
}
refused('a number where a string is required', 400, 'VALIDATION_ERROR',
    patch_raw('u1', '{"phone":15550100,"name":1e308}'),
    [phone => 'must be a string'], [name => 'must be a string'], { ordered => 1 });
{
    my $digits = '9' x 60000;
    refused('a 60000-digit number', 400, 'INVALID_JSON', patch_raw('u1', "{\"metadata\":{\"n\":$digits}}"),
        $BODY{range});
}

# ---------------------------------------------------------------- UTF-8
my @bad_utf8 = (
    ['lone continuation byte', "\x80"],
    ['0xff', "\xff"],
    ['overlong slash', "\xc0\xaf"],
    ['overlong NUL', "\xc0\x80"],
    ['UTF-8 encoded surrogate', "\xed\xa0\x80"],
    ['beyond U+10FFFF', "\xf4\x90\x80\x80"],
    ['truncated 3-byte sequence', "\xe2\x82"],
    ['5-byte sequence', "\xf8\x88\x80\x80\x80"],
);
for my $b (@bad_utf8) {
    refused("invalid UTF-8 in a value: $b->[0]", 400, 'INVALID_JSON',
        patch_raw('u1', "{\"name\":\"a$b->[1]b\"}"), $BODY{utf8});
    refused("invalid UTF-8 in a key: $b->[0]", 400, 'INVALID_JSON',
        patch_raw('u1', "{\"na$b->[1]me\":\"x\"}"), $BODY{utf8});
}
refused('Latin-1 body', 400, 'INVALID_JSON', patch_raw('u1', "{\"name\":\"Jos\xe9\"}"), $BODY{utf8});
refused('UTF-16 body', 400, 'INVALID_JSON', patch_raw('u1', "\xff\xfe{\x00}\x00"), $BODY{utf8});

# ---------------------------------------------------------------- NUL, duplicates
refused('\u0000 in a value', 400, 'INVALID_JSON', patch_raw('u1', '{"name":"a\u0000b"}'), $BODY{nul});
refused('\u0000 in a key', 400, 'INVALID_JSON', patch_raw('u1', '{"na\u0000me":"x"}'), $BODY{nul});
refused('\u0000 in metadata', 400, 'INVALID_JSON', patch_raw('u1', '{"metadata":{"k":"\u0000"}}'), $BODY{nul});
refused('\u0000 in a metadata key', 400, 'INVALID_JSON', patch_raw('u1', '{"metadata":{"\u0000":1}}'), $BODY{nul});
refused('duplicate key', 400, 'INVALID_JSON',
    patch_raw('u1', '{"email":"a@example.com","email":"b@example.com","name":"x"}'), $BODY{dup});
refused('duplicate key in metadata', 400, 'INVALID_JSON', patch_raw('u1', '{"metadata":{"a":1,"a":2}}'), $BODY{dup});
refused('duplicate key spelled with an escape', 400, 'INVALID_JSON',
    patch_raw('u1', '{"name":"x","n\u0061me":"y"}'), $BODY{dup});

# ---------------------------------------------------------------- many / long fields
{
    # details are bounded: the first 32 violations
    # (NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS), in the body's order
    my $body = '{' . join(',', map { "\"f$_\":1" } 1 .. 6000) . '}';
    refused('6000 unknown fields', 400, 'VALIDATION_ERROR', patch_raw('u1', $body),
        (map { ["f$_" => 'is not a known field'] } 1 .. 32), { ordered => 1 });
}
{
    # named in full in details; the message (checked by error_ok) quotes
    # it cut to 512 bytes
    my $long = 'k' x 60000;
    refused('a 60000-byte unknown field name', 400, 'VALIDATION_ERROR', patch_raw('u1', "{\"$long\":1}"),
        [$long => 'is not a known field']);
}

{
    # the message quotes the first violation, cut to 512 bytes: never in
    # the middle of a UTF-8 sequence (the body must stay UTF-8 JSON)
    for my $pre (0 .. 2) {
        my $f = ('a' x $pre) . ("\xc3\xa9" x 300);
        (my $chars = $f) =~ s/\xc3\xa9/\x{e9}/g;
        my $r = refused("a 600-byte multibyte unknown field name (+$pre)", 400, 'VALIDATION_ERROR',
            patch_raw('u1', "{\"$f\":1}"), [$chars => 'is not a known field']);
        my $copy = $r->{body};
        ok(utf8::decode($copy), "multibyte field name (+$pre): the error body is valid UTF-8");
    }
}

# ---------------------------------------------------------------- sizes
sub exact_body {
    my ($size, $obj) = @_;
    my $j = json_encode($obj);
    return substr($j, 0, -1) . (' ' x ($size - length $j)) . '}';
}
{
    my $b = exact_body(65536, { name => 'Sixty Four' });
    is(length $b, 65536, 'fixture: 65536 bytes');
    accepted('a body of exactly 65536 bytes is processed', 200, patch_raw('u1', $b), 'sd:{acme}:c:u1', @FEED);
    is($R->hget('sd:{acme}:c:u1', 'n'), 'Sixty Four', '65536-byte body: the update is stored');
    refused('a body of 65537 bytes', 413, 'PAYLOAD_TOO_LARGE', patch_raw('u1', exact_body(65537, { name => 'x' })), $OVER);
    refused('65536 bytes, metadata over 16 KiB', 400, 'VALIDATION_ERROR',
        patch_raw('u1', exact_body(65536, { metadata => { pad => 'p' x 30000 } })),
        [metadata => 'must be at most 16384 bytes as compact JSON']);
    # KNOWN FAILING (module bug): the message names the location's largest
    # limit (1048576) instead of this route's (65536), see 20-upsert.t
    refused('Content-Length over the limit, no body sent: the message names the route\'s limit', 413,
        'PAYLOAD_TOO_LARGE', sub {
        $env->raw_request("PATCH /api/v1/customers/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            . "X-API-Key: $key\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n",
            timeout => 15)
    }, $OVER);
    refused('negative Content-Length', 400, 'VALIDATION_ERROR', sub {
        $env->raw_request("PATCH /api/v1/customers/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            . "X-API-Key: $key\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}",
            timeout => 15)
    }, $MALFORMED);
}

# ---------------------------------------------------------------- chunked
sub chunked {
    my ($ext, $body, $size, %o) = @_;
    my $req = "PATCH /api/v1/customers/$ext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-API-Key: $key\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        . ($o{headers} // '') . "\r\n";
    for (my $p = 0; $p < length $body; $p += $size) {
        my $part = substr($body, $p, $size);
        $req .= sprintf("%x%s\r\n%s\r\n", length $part, $o{ext} // '', $part);
    }
    $req .= "0\r\n\r\n" unless $o{no_end};
    return sub { $env->raw_request($req, timeout => 15) };
}
accepted('chunked body in 1-byte chunks', 200,
    chunked('u1', json_encode({ name => 'Chunky' }), 1), 'sd:{acme}:c:u1', @FEED);
is($R->hget('sd:{acme}:c:u1', 'n'), 'Chunky', 'chunked update stored');
accepted('chunked body with chunk extensions', 200,
    chunked('u1', json_encode({ name => 'Ext' }), 4, ext => ';foo=bar'), 'sd:{acme}:c:u1', @FEED);
accepted('chunked 40000-byte body (temp file)', 200,
    chunked('u1', exact_body(40000, { name => 'Spilled' }), 3000), 'sd:{acme}:c:u1', @FEED);
is($R->hget('sd:{acme}:c:u1', 'n'), 'Spilled', 'chunked body spilled to a temp file: stored');
accepted('chunked 65536 bytes in 1000-byte chunks', 200,
    chunked('u1', exact_body(65536, { name => 'Chunk 64k' }), 1000), 'sd:{acme}:c:u1', @FEED);
refused('chunked 65537 bytes', 413, 'PAYLOAD_TOO_LARGE', chunked('u1', exact_body(65537, { name => 'x' }), 1000), $OVER);
refused('chunked invalid JSON', 400, 'INVALID_JSON', chunked('u1', '{"name":', 2), $BODY{json});
refused('chunked empty body', 400, 'INVALID_JSON', chunked('u1', '', 1), $BODY{empty});
refused('chunked, bad chunk size', 400, 'VALIDATION_ERROR', sub {
    $env->raw_request("PATCH /api/v1/customers/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-API-Key: $key\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        . "zz\r\n{}\r\n0\r\n\r\n", timeout => 15)
}, $MALFORMED);
refused('chunked, chunk size overflow', 400, 'VALIDATION_ERROR', sub {
    $env->raw_request("PATCH /api/v1/customers/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-API-Key: $key\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        . "ffffffffffffffffff\r\n{}\r\n0\r\n\r\n", timeout => 15)
}, $MALFORMED);
refused('Transfer-Encoding and Content-Length together', 400, 'VALIDATION_ERROR', sub {
    $env->raw_request("PATCH /api/v1/customers/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-API-Key: $key\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        . "Content-Length: 5\r\n\r\n2\r\n{}\r\n0\r\n\r\n", timeout => 15)
}, $MALFORMED);

# ---------------------------------------------------------------- slow bodies
# the bytes slow_request() read as a response (status, headers, json)
sub response_of {
    my ($in) = @_;
    my $res = SupportDesk::Test::_parse_response($in, 1) || { status => 0, error => "no response: '$in'" };
    $res->{headers} ||= {};
    $res->{json} = json_decode($res->{body}) if length($res->{body} // '');
    return $res;
}

# raw socket: send @parts with $gap seconds between them, then read the answer
sub slow_request {
    my ($head, $gap, @parts) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->port, Proto => 'tcp')
        or die "connect: $!";
    local $SIG{PIPE} = 'IGNORE';
    my $t0 = time;
    syswrite($s, $head);
    for my $p (@parts) { sleep $gap; syswrite($s, $p) }
    my $in = '';
    my $rin = '';
    vec($rin, fileno($s), 1) = 1;
    while (time - $t0 < 10) {
        last unless select(my $r = $rin, undef, undef, 10 - (time - $t0)) > 0;
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $in .= $buf;
    }
    close $s;
    # not through parallel(): recorded here for the OpenAPI check (t/openapi/)
    $env->record_answer($head . join('', @parts), response_of($in)) if $ENV{SD_RECORD_DIR};
    return ($in, time - $t0);
}
{
    my $body = json_encode({ name => 'Slow but steady' });
    my $head = "PATCH /api/v1/customers/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-API-Key: $key\r\nContent-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n";
    my $before = $env->snapshot;
    # a body that stops: client_body_timeout 1s
    my ($in, $t) = slow_request($head, 0, substr($body, 0, 5));
    my $res = response_of($in);
    error_ok($res, 408, 'REQUEST_TIMEOUT', 'the request body did not arrive within client_body_timeout',
             'stalled body: the 408 envelope');
    fields_ok($res, [], 'stalled body');
    ok($t >= 0.9 && $t < 5, sprintf 'stalled body: given up after client_body_timeout (%.1fs)', $t);
    ok(!changed($before, $env->snapshot), 'stalled body: no key changed');
    # chunked, stalled between two chunks
    my ($in2, $t2) = slow_request("PATCH /api/v1/customers/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-API-Key: $key\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        . "5\r\n{\"nam\r\n", 0);
    error_ok(response_of($in2), 408, 'REQUEST_TIMEOUT', undef,
             sprintf 'stalled chunked body: the 408 envelope (%.1fs)', $t2);
    ok(!changed($before, $env->snapshot), 'stalled chunked body: no key changed');
    sd_check_ok('stalled body');

    # slow but within the timeout between reads: served
    my @parts = map { substr($body, $_ * 8, 8) } 0 .. int((length($body) - 1) / 8);
    ($in, $t) = slow_request($head, 0.3, @parts);
    $res = response_of($in);
    envelope_ok($res, 200, undef, sprintf 'slow body (%d pieces, 0.3s apart, %.1fs in all) is served', scalar @parts, $t);
    is_deeply([$res->{json}{data}{wasCreated}, $res->{json}{data}{customer}{name}], [JSON::PP::false, 'Slow but steady'],
              'slow body: the update is answered');
    is($R->hget('sd:{acme}:c:u1', 'n'), 'Slow but steady', 'slow body: stored');
    sd_check_ok('slow body');
    my $r = api('GET', 'u1');
    envelope_ok($r, 200, undef, 'the worker still serves after the stalled bodies');
}

# ---------------------------------------------------------------- externalId: injection
for my $ext ('abc%0d%0aSet-Cookie:%20evil=1', 'abc%0aX-Injected:%201', 'abc%0d', '%0d%0a%0d%0a<html>') {
    for my $m ('PATCH', 'GET', 'DELETE') {
        my $r = refused("externalId $ext ($m)", 400, 'VALIDATION_ERROR',
            sub { api($m, $ext, $m eq 'PATCH' ? { name => 'x' } : undef) },
            [externalId => 'must not contain control characters']);
        ok(!exists $r->{headers}{'set-cookie'} && !exists $r->{headers}{'x-injected'},
            "externalId $ext ($m): no injected header");
    }
}

# ---------------------------------------------------------------- externalId: namespace escapes
# valid ids with Redis-special characters: accepted, and each lands in
# exactly sd:{acme}:c:<id>: the hash tag is the first {...}, so no id can
# leave the app's slot or reach another app's keys
my %odd = (
    '}'                  => '%7D',
    '{'                  => '%7B',
    '}{other}:c:o1'      => '%7D%7Bother%7D:c:o1',
    '{other}'            => '%7Bother%7D',
    'x}:emails'          => 'x%7D:emails',
    ':'                  => ':',
    'c:u1'               => 'c:u1',
    '*'                  => '*',
    '?'                  => '%3F',
    '[a-z]*'             => '%5Ba-z%5D*',
    '..'                 => '..',
    "\\"                 => '%5C',
);
for my $id (sort keys %odd) {
    my $path = $odd{$id};
    my $k = "sd:{acme}:c:$id";
    my $before = $env->snapshot;
    my $r = accepted("odd externalId '$id': create", 200,
        sub { api('PATCH', $path, { email => "odd" . length($id) . ord($id) . '@example.com', name => 'Odd' }) },
        $k, @INDEX);
    is($r->{json}{data}{customer}{externalId}, $id, "odd externalId '$id': echoed as sent");
    ok($R->exists($k), "odd externalId '$id': stored as $k");
    my @c = changed($before, $env->snapshot);
    ok(!grep({ !/^sd:\{acme\}:/ } @c), "odd externalId '$id': only sd:{acme}: keys changed") or diag "@c";
    envelope_ok(api('GET', $path), 200, undef, "odd externalId '$id': GET");
    accepted("odd externalId '$id': DELETE", 200, sub { api('DELETE', $path) },
        $k, @INDEX);
}
# no pattern matching anywhere: '*' and '?' name no other customer
refused('GET * (no such customer) is not a pattern', 404, 'CUSTOMER_NOT_FOUND', sub { api('GET', '*') });
refused('DELETE * deletes nothing', 404, 'CUSTOMER_NOT_FOUND', sub { api('DELETE', '*') });
refused('DELETE u? deletes nothing', 404, 'CUSTOMER_NOT_FOUND', sub { api('DELETE', 'u%3F') });
refused("GET c:u1 is not u1", 404, 'CUSTOMER_NOT_FOUND', sub { api('GET', 'c:u1') });
refused("another app's customer is not found", 404, 'CUSTOMER_NOT_FOUND', sub { api('GET', 'o1') });
refused("another app's customer is not deleted", 404, 'CUSTOMER_NOT_FOUND', sub { api('DELETE', 'o1') });
refused('{other}:c:o1 is not the other app', 404, 'CUSTOMER_NOT_FOUND', sub { api('GET', '%7Bother%7D:c:o1') });

# [case, path segment, what answers]: %00 and a bad %-escape never reach
# the module: nginx refuses the request line itself (its 400, no details);
# the others are the module's externalId rule
my $SLASH = [externalId => "must not contain '/'"];
my $CTL   = [externalId => 'must not contain control characters'];
for my $bad (['%00', '%00', $MALFORMED], ['a%00b', 'a%00b', $MALFORMED], ['%2F', '%2F', $SLASH],
             ['a%2Fb', 'a%2Fb', $SLASH], ['%7f', '%7f', $CTL], ['%c2%80 (C1 control)', '%c2%80', $CTL],
             ['%ff (not UTF-8)', '%ff', [externalId => 'must be valid UTF-8']],
             ['%zz', '%zz', $MALFORMED], ['%4', 'a%4', $MALFORMED], ['%', 'a%', $MALFORMED]) {
    for my $m ('PATCH', 'GET', 'DELETE') {
        refused("externalId $bad->[0] ($m)", 400, 'VALIDATION_ERROR',
            sub { api($m, $bad->[1], $m eq 'PATCH' ? { name => 'x' } : undef) }, $bad->[2]);
    }
}

# ---------------------------------------------------------------- externalId: length
{
    my $e255 = "\xe2\x82\xac" x 85;                      # 255 bytes
    my $p255 = '%E2%82%AC' x 85;
    accepted('externalId of 255 bytes: create', 200,
        sub { api('PATCH', $p255, { email => 'long255@example.com', name => 'Long' }) },
        "sd:{acme}:c:$e255", @INDEX);
    accepted('externalId of 255 bytes: delete', 200, sub { api('DELETE', $p255) },
        "sd:{acme}:c:$e255", @INDEX);
    for my $m ('PATCH', 'GET', 'DELETE') {
        refused("externalId of 256 bytes ($m)", 400, 'VALIDATION_ERROR',
            sub { api($m, ('a' x 256), $m eq 'PATCH' ? { name => 'x' } : undef) },
            [externalId => 'must be 1-255 bytes']);
        refused("externalId of 7000 bytes ($m)", 400, 'VALIDATION_ERROR',
            sub { api($m, ('a' x 7000), $m eq 'PATCH' ? { name => 'x' } : undef) },
            [externalId => 'must be 1-255 bytes']);
        # over large_client_header_buffers: nginx's 414, answered as the
        # API's 400 (the SPEC has no 414), message "request URI is too long"
        refused("externalId of 20000 bytes ($m): URI too long", 400, 'VALIDATION_ERROR',
            sub { api($m, ('a' x 20000), $m eq 'PATCH' ? { name => 'x' } : undef) },
            { message => 'request URI is too long' });
    }
}

# ---------------------------------------------------------------- another app smuggled in
# externalId of a single upsert comes from the path: in the body it is
# read-only, like the server-generated fields
my $UNKNOWN = 'is not a known field';
my $RO = 'is read-only';
for my $f (['app', '"other"', $UNKNOWN], ['appId', '"other"', $UNKNOWN], ['tenant', '"other"', $UNKNOWN],
           ['externalId', '"o1"', $RO], ['id', '"cus_1"', $RO], ['createdAt', '0', $RO],
           ['sd:{other}:c:o1', '{}', $UNKNOWN], ['{other}', '1', $UNKNOWN]) {
    refused("payload field $f->[0] is refused", 400, 'VALIDATION_ERROR',
        patch_raw('u1', "{\"name\":\"x\",\"$f->[0]\":$f->[1]}"), [$f->[0] => $f->[2]]);
    refused("payload field $f->[0] on create is refused", 400, 'VALIDATION_ERROR',
        patch_raw('newbie', "{\"email\":\"newbie\@example.com\",\"name\":\"x\",\"$f->[0]\":$f->[1]}"),
        [$f->[0] => $f->[2]]);
}
refused('X-API-Key of one app, header naming another', 404, 'CUSTOMER_NOT_FOUND',
    sub { api('GET', 'o1', undef, headers => { 'X-App' => 'other', 'X-App-Id' => 'other' }) });
# a header the API reads, sent twice, is a client error: never resolved by
# picking one of them
refused('two X-API-Key headers, the second from another app', 401, 'UNAUTHORIZED', sub {
    $env->raw_request("GET /api/v1/customers/o1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-API-Key: $key\r\nX-API-Key: $other\r\n\r\n", timeout => 15)
}, { message => 'X-API-Key must be sent once' });
refused('the same X-API-Key twice', 401, 'UNAUTHORIZED', sub {
    $env->raw_request("GET /api/v1/customers/u1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . "X-API-Key: $key\r\nX-API-Key: $key\r\n\r\n", timeout => 15)
}, { message => 'X-API-Key must be sent once' });
# values that look like other keys are just values
accepted('metadata naming another app is plain data', 200,
    patch_raw('u1', '{"metadata":{"app":"other","key":"sd:{other}:c:o1"}}'), 'sd:{acme}:c:u1', @FEED);
is($R->hget('sd:{other}:c:o1', 'n'), 'Other One', "the other app's customer is untouched");

# ---------------------------------------------------------------- media type
refused('Content-Type application/json-patch+json', 415, 'UNSUPPORTED_MEDIA_TYPE',
    patch_raw('u1', '{"name":"x"}', headers => { 'Content-Type' => 'application/json-patch+json' }));
refused('Content-Type application/jsonx', 415, 'UNSUPPORTED_MEDIA_TYPE',
    patch_raw('u1', '{"name":"x"}', headers => { 'Content-Type' => 'application/jsonx' }));

# ---------------------------------------------------------------- aftermath
sd_check_ok('end');
my $log = $env->nginx_error_log;
unlike($log, qr/exited on signal/, 'no worker crashed');
unlike($log, qr/\[alert\]/, 'no alert in the error log');
ok($env->stop_nginx(timeout => 20), 'graceful stop');
unlike($env->nginx_error_log, qr/exited on signal|open socket .* left/, 'clean exit');

done_testing;
