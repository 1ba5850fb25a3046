# HTTP corners of SPEC section 8 (issue 10, items 12-16): HEAD wherever GET
# works, TRACE and CONNECT answered with the route's Allow, a method nginx
# cannot parse still in the envelope, a URI too long as the API's 400,
# repeated query parameters refused by name, invalid UTF-8 in a parameter
# name quoted as valid UTF-8, and Expect: 100-continue honoured only once
# the route, the key, the type and the size are acceptable.
# Configuration: the harness's default.  In cluster mode (SD_CLUSTER=1) the
# half-close case's 0.1 s Redis pause pauses every node of the cluster.
use strict;
use warnings;
use Test::More;
binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);
use IO::Socket::INET;
use IO::Select;
use Encode qw(decode FB_CROAK LEAVE_SRC);
use SupportDesk::Test qw(envelope_ok error_ok fields_ok json_encode json_decode wait_until);

my $env = SupportDesk::Test->new();
my $key = $env->create_key('acme', 'http edge tests');
my $r;

sub snapshot_same {
    my ($name, $do) = @_;
    my $before = $env->snapshot;
    my $res = $do->();
    is_deeply($env->snapshot, $before, "$name: Redis unchanged");
    return $res;
}

envelope_ok($env->api('PATCH', 'h1', $key, { email => 'h1@example.com', name => 'H One' }), 200, undef, 'setup h1');
envelope_ok($env->api('POST', '/api/v1/customers/h1/notes', $key, { note => 'a note' }), 201, undef, 'setup: a note');
$r = $env->api('POST', '/api/v1/customers/bulk-update', $key, { filter => { externalId => ['h1'] }, set => { phone => '1' } });
envelope_ok($r, 202, undef, 'setup: a job');
my $job = $r->{json}{data}{jobId};
ok(wait_until(sub { ($env->api('GET', "/api/v1/jobs/$job", $key)->{json}{data}{job}{status} // '') eq 'done' }, 20, 0.1),
   'setup: the job is done');
ok($env->jobs_idle('acme'), 'setup: its app out of the registry of apps with work');

# ---------------------------------------------------------------- HEAD
# the same status and headers as GET, no body; the errors too
for my $path ('/api/v1/customers', '/api/v1/customers?limit=1', '/api/v1/customers/h1',
              '/api/v1/customers/h1/notes', '/api/v1/customers/h1/notifications',
              "/api/v1/jobs/$job", '/api/v1/events', '/api/v1/customers/nobody',
              '/api/v1/customers?limit=0', "/api/v1/jobs/job_999999") {
    my $get = $env->api('GET', $path, $key);
    my $head = snapshot_same("HEAD $path", sub { $env->api('HEAD', $path, $key) });
    is($head->{status}, $get->{status}, "HEAD $path: the status of GET ($get->{status})");
    is($head->{body}, '', "HEAD $path: no body");
    for my $h ('content-type', 'content-length', 'etag') {
        is($head->{headers}{$h}, $get->{headers}{$h}, "HEAD $path: $h as GET's");
    }
}
$r = $env->request('HEAD', '/api/v1/customers/h1');
is($r->{status}, 401, 'HEAD without a key: 401');
is($r->{body}, '', '... without a body');
$r = $env->api('HEAD', '/api/v1/customers/h1', $key, undef,
              headers => { 'If-None-Match' => $env->api('GET', '/api/v1/customers/h1', $key)->{headers}{etag} });
is($r->{status}, 304, 'HEAD with the current ETag in If-None-Match: 304');
$r = $env->api('HEAD', '/api/v1/customers/bulk-update', $key);
is($r->{status}, 405, 'HEAD on a route without GET: 405');
is($r->{headers}{allow}, 'POST', '... Allow: POST');

# ---------------------------------------------------------------- TRACE, CONNECT
# nginx refuses both before it looks for a location: the envelope, with the
# route's Allow; no route: 404, as for any method
for my $m (qw(TRACE CONNECT)) {
    for my $case (['/api/v1/customers/h1', 'GET, HEAD, PATCH, DELETE'], ['/api/v1/customers', 'GET, HEAD, PATCH'],
                  ["/api/v1/jobs/$job", 'GET, HEAD'], ['/api/v1/events?after=0-0', 'GET, HEAD']) {
        my ($path, $allow) = @$case;
        $r = snapshot_same("$m $path", sub { $env->api($m, $path, $key) });
        error_ok($r, 405, 'METHOD_NOT_ALLOWED', 'method not allowed on this route', "$m $path: 405 in the envelope");
        is($r->{headers}{allow}, $allow, "$m $path: Allow: $allow");
    }
    $r = $env->api($m, '/api/v1/nothing/here', $key);
    error_ok($r, 404, 'NOT_FOUND', 'no such route', "$m on no route: 404 NOT_FOUND");
    ok(!exists $r->{headers}{allow}, "$m on no route: no Allow");
}
$r = $env->request('TRACE', '/');
is($r->{status}, 405, 'TRACE outside the API: nginx\'s own 405');
unlike($r->{headers}{'content-type'} // '', qr/json/, '... not an envelope');

# a method nginx cannot parse (lowercase) below the API prefix: the envelope
$r = $env->raw_request("get /api/v1/customers/h1 HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\nConnection: close\r\n\r\n");
error_ok($r, 400, 'VALIDATION_ERROR', undef, 'a lowercase method below /api/v1: 400 in the envelope');
$r = $env->raw_request("get / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
is($r->{status}, 400, 'a lowercase method elsewhere: 400');
unlike($r->{headers}{'content-type'} // '', qr/json/, '... nginx\'s own page');

# ---------------------------------------------------------------- URI too long
$r = snapshot_same('a 20,000-byte externalId', sub { $env->api('GET', 'a' x 20000, $key) });
error_ok($r, 400, 'VALIDATION_ERROR', 'request URI is too long', 'a URI over large_client_header_buffers: 400, not 414');

# ---------------------------------------------------------------- repeated query parameters
for my $case (
    ['/api/v1/customers?limit=1&limit=2', 'limit'],
    ['/api/v1/customers?cursor=MQ&cursor=MQ', 'cursor'],
    ['/api/v1/customers?email=a&name=b&email=a', 'email'],
    ['/api/v1/customers?name=a&name=', 'name'],
    ['/api/v1/customers?include=notesCount&include=notesCount', 'include'],
    ['/api/v1/customers?metadata.plan=a&metadata.seats=1&metadata.plan=a', 'metadata.plan'],
    ['/api/v1/customers/h1/notes?text=a&text=b', 'text'],
    ['/api/v1/customers/h1/notes?limit=5&limit=5', 'limit'],
    ['/api/v1/events?after=0-0&after=0-0', 'after'],
    ['/api/v1/events?wait=0&limit=1&wait=0', 'wait'],
    ['/api/v1/customers?l%69mit=1&limit=2', 'limit'],
) {
    my ($path, $field) = @$case;
    $r = $env->api('GET', $path, $key);
    error_ok($r, 400, 'VALIDATION_ERROR', "$field must be sent once", "$path: refused");
    fields_ok($r, [[$field => 'must be sent once']], $path);
}
$r = $env->api('GET', '/api/v1/customers?metadata.plan=a&metadata.seats=1', $key);
envelope_ok($r, 200, undef, 'two different metadata filters: fine');
my $many = join '&', map { "metadata.k$_=v" } 1 .. 17;
$r = $env->api('GET', "/api/v1/customers?$many", $key);
error_ok($r, 400, 'VALIDATION_ERROR', 'metadata filters: at most 16', '17 metadata filters: refused');
fields_ok($r, [[metadata => 'filters: at most 16']], '17 metadata filters');
$many = join '&', map { "metadata.k$_=v" } 1 .. 16;
envelope_ok($env->api('GET', "/api/v1/customers?$many", $key), 200, undef, '16 metadata filters: fine');

# ---------------------------------------------------------------- UTF-8 in answers
# the raw path of the answer is bytes: the body must decode as strict UTF-8
for my $case (['x%FF=1', "x\x{FFFD}"], ['%C3=1', "\x{FFFD}"], ['%FF%FE', "\x{FFFD}\x{FFFD}"],
              ["caf%C3%A9=1", "caf\x{e9}"], ['%ED%A0%80=1', "\x{FFFD}\x{FFFD}\x{FFFD}"]) {
    my ($q, $field) = @$case;
    $r = $env->api('GET', "/api/v1/customers?$q", $key);
    my $text = eval { decode('UTF-8', $r->{body}, FB_CROAK | LEAVE_SRC) };
    ok(defined $text, "?$q: the answer is valid UTF-8") or diag $r->{body};
    my $j = defined $text ? json_decode($r->{body}) : undef;
    is($r->{status}, 400, "?$q: 400");
    my $d = $j && $j->{error}{details} ? $j->{error}{details}[0] : {};
    is($d->{field}, $field, "?$q: the name quoted with U+FFFD for each bad byte");
    is($d->{message}, ($field =~ /\x{FFFD}/ ? 'is not valid UTF-8' : 'is not a known parameter'), "?$q: the reason");
}

# ---------------------------------------------------------------- Expect: 100-continue
# headers first, then (only on 100 Continue) the body: what a careful
# client does; returns the statuses in the order they came
sub expect_exchange {
    my (%o) = @_;
    my $body = $o{body} // '{"email":"e1@example.com","name":"E One"}';
    my $len = $o{length} // length $body;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->port, Timeout => 5)
        or die "connect: $!";
    my $req = "$o{method} $o{path} HTTP/1.1\r\nHost: x\r\n";
    $req .= "X-API-Key: $o{key}\r\n" if defined $o{key};
    $req .= "Content-Type: " . ($o{type} // 'application/json') . "\r\n";
    $req .= "Content-Length: $len\r\nExpect: 100-continue\r\n\r\n";
    print $s $req;
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $sent = 0;
    my $deadline = time + 5;
    while (time < $deadline) {
        last unless $sel->can_read(1);
        my $n = sysread($s, my $chunk, 65536);
        last unless $n;
        $buf .= $chunk;
        if (!$sent && $buf =~ /^HTTP\/1\.1 100 [^\r]*\r\n\r\n\z/) {
            print $s $body;
            $sent = 1;
        }
        last if $buf =~ /HTTP\/1\.1 [2-5]\d\d .*?\r\n\r\n/s && $buf =~ /\}\s*\z|Content-Length: 0/i;
    }
    my @statuses = $buf =~ /^HTTP\/1\.1 (\d{3})/mg;
    my ($conn) = $buf =~ /^Connection: ([^\r]+)/mi;
    return { statuses => \@statuses, sent => $sent, connection => $conn // '' };
}

my $x = expect_exchange(method => 'PATCH', path => '/api/v1/customers/e1', key => $key);
is_deeply($x->{statuses}, [100, 200], 'an acceptable request: 100 Continue, then 200');
ok($x->{sent}, '... and the body was sent');
is($env->redis->hget('sd:{acme}:c:e1', 'e'), 'e1@example.com', '... and stored');

for my $case (
    ['no key', 401, method => 'PATCH', path => '/api/v1/customers/e2'],
    ['an unknown key', 401, method => 'PATCH', path => '/api/v1/customers/e2', key => 'sdk_unknown_000000000000'],
    ['no such route', 404, method => 'PATCH', path => '/api/v1/nothing', key => $key],
    ['a method the route lacks', 405, method => 'PUT', path => '/api/v1/customers/e2', key => $key],
    ['a Content-Type that is not JSON', 415, method => 'PATCH', path => '/api/v1/customers/e2', key => $key, type => 'text/plain'],
    ['a body over the route\'s limit', 413, method => 'PATCH', path => '/api/v1/customers/e2', key => $key, length => 70000],
    ['a body over every limit', 413, method => 'PATCH', path => '/api/v1/customers/e2', key => $key, length => 5_000_000],
) {
    my ($what, $status, %o) = @$case;
    my $before = $env->snapshot;
    $x = expect_exchange(%o);
    is_deeply($x->{statuses}, [$status], "Expect with $what: $status at once, no 100 Continue");
    ok(!$x->{sent}, "Expect with $what: the body was never invited");
    is(lc $x->{connection}, 'close', "Expect with $what: the connection closes (no body is left to misread)");
    is_deeply($env->snapshot, $before, "Expect with $what: Redis unchanged");
}

# ---------------------------------------------------------------- bulk-update is a route
# a customer called bulk-update could never be read: refused everywhere
$r = snapshot_same('a batch item bulk-update', sub {
    $env->api('PATCH', '/api/v1/customers', $key, { customers => [{ externalId => 'bulk-update', email => 'bu@example.com', name => 'B' }] }) });
envelope_ok($r, 200, undef, 'a batch with an item bulk-update: 200');
my $item = $r->{json}{data}{results}[0] // {};
is($item->{success} ? 'success' : ($item->{error}{code} // ''), 'VALIDATION_ERROR', '... the item is a VALIDATION_ERROR');
is_deeply($item->{error}{details}, [{ field => 'externalId', message => 'is reserved: /customers/bulk-update is a route' }],
          '... naming externalId') or diag json_encode($item);
$r = snapshot_same('notes of bulk-update', sub { $env->api('POST', '/api/v1/customers/bulk-update/notes', $key, { note => 'x' }) });
error_ok($r, 400, 'VALIDATION_ERROR', 'externalId is reserved: /customers/bulk-update is a route', 'POST /customers/bulk-update/notes: 400');
$r = $env->api('GET', '/api/v1/customers/bulk-update', $key);
error_ok($r, 405, 'METHOD_NOT_ALLOWED', undef, 'GET /customers/bulk-update: the route, 405');
is($r->{headers}{allow}, 'POST', '... Allow: POST');
$r = $env->api('PATCH', 'bulk%2Dupdate', $key, { email => 'bu@example.com', name => 'B' });
error_ok($r, 400, 'VALIDATION_ERROR', 'externalId is reserved: /customers/bulk-update is a route', 'PATCH /customers/bulk%2Dupdate: 400');

$env->invariants_ok('acme');

# ---------------------------------------------------------------- bodies stay in memory
# nginx would write a body over client_body_buffer_size to a temp file
# (and keep it, with client_body_in_file_only on): in a supportdesk
# location every body up to its limit is read into memory
{
    # a long Redis timeout: 500 items under valgrind take a while
    my $small = SupportDesk::Test->new(redis_timeout => '20s',
        http_conf => 'client_body_buffer_size 8k; client_body_in_file_only on;',
    );
    my $k = $small->create_key('acme');
    my $meta = { map { sprintf('k%04d', $_) => 'v' x 10 } 1 .. 700 };
    my $body = json_encode({ email => 'big@example.com', name => 'Big', metadata => $meta });
    cmp_ok(length $body, '>', 8192 * 1.25, 'a body over client_body_buffer_size (' . length($body) . ' bytes)');
    $r = $small->api('PATCH', 'big', $k, $body);
    envelope_ok($r, 200, undef, '... is served');
    is(scalar keys %{ $r->{json}{data}{customer}{metadata} || {} }, 700, '... whole');
    my @items = map { { externalId => "b$_", email => "b$_\@example.com", name => 'B' x 200, metadata => { n => 'x' x 1000 } } } 1 .. 500;
    my $batch = json_encode({ customers => \@items });
    cmp_ok(length $batch, '>', 500_000, 'a batch of ' . length($batch) . ' bytes');
    $r = $small->api('PATCH', '/api/v1/customers', $k, $batch, timeout => 20);
    envelope_ok($r, 200, undef, '... is served');
    is(scalar(grep { $_->{success} } @{ $r->{json}{data}{results} || [] }), 500, '... every item');
    (my $body2 = $body) =~ s/big\@example/chunky\@example/;
    $r = $small->request('PATCH', '/api/v1/customers/chunky', headers => { 'X-API-Key' => $k, 'Content-Type' => 'application/json',
                         'Transfer-Encoding' => 'chunked' },
                         body => join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } (substr($body2, 0, 6000), substr($body2, 6000))) . "0\r\n\r\n");
    envelope_ok($r, 200, undef, 'a chunked body over client_body_buffer_size: served');
    opendir(my $dh, $small->tmp . '/client_body') or die "client_body: $!";
    my @files = grep { !/^\./ } readdir $dh;
    is_deeply(\@files, [], 'no body went to a temp file') or diag "@files";
    unlike($small->nginx_error_log, qr/buffered to a temporary file/, 'nginx logged no temp file');
}

# ---------------------------------------------------------------- half-close
# a client that sends its request and then shuts down its sending side
# still reads: with supportdesk_ignore_client_abort on it gets its answer
# also when the EOF comes while Redis is working (here: paused)
{
    my $hc = SupportDesk::Test->new(location_conf => 'supportdesk_ignore_client_abort on;');
    my $k = $hc->create_key('acme');
    envelope_ok($hc->api('PATCH', 'hc', $k, { email => 'hc@example.com', name => 'H' }), 200, undef, 'half-close: setup');
    my $answered = 0;
    for my $i (1 .. 20) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $hc->port, Timeout => 5) or die "connect: $!";
        $hc->pause_redis if $i % 2;
        print $s "GET /api/v1/customers/hc HTTP/1.1\r\nHost: x\r\nX-API-Key: $k\r\nConnection: close\r\n\r\n";
        shutdown($s, 1);
        if ($i % 2) { sleep 0.1; $hc->resume_redis }
        my $buf = '';
        my $sel = IO::Select->new($s);
        while ($sel->can_read(3)) { my $n = sysread($s, my $b, 65536); last unless $n; $buf .= $b }
        $answered++ if $buf =~ /^HTTP\/1\.1 200 / && $buf =~ /"externalId":"hc"/;
    }
    is($answered, 20, 'supportdesk_ignore_client_abort on: 20 of 20 half-closed clients answered');
    unlike($hc->nginx_error_log, qr/client prematurely closed/, '... none taken for gone');
}

done_testing;
