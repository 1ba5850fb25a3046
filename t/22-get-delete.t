# GET / DELETE one customer, routing (404 / 405), the legacy location.
# Configuration: the harness's default configuration.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(envelope_ok error_ok fields_ok json_decode);

my $env = SupportDesk::Test->new;
my $key = $env->create_key('acme');
my $R = $env->redis;
my $r;

sub snapshot_same {
    my ($name, $do) = @_;
    my $before = $env->snapshot;
    my $res = $do->();
    is_deeply($env->snapshot, $before, "$name: Redis unchanged");
    return $res;
}

# ---- GET
$r = $env->api('PATCH', 'g1', $key, { email => 'g1@example.com', name => 'G One', phone => '123',
                                      metadata => { a => 1 } });
envelope_ok($r, 200, undef, 'create g1');
my $created = $r->{json}{data}{customer};

$r = $env->api('GET', 'g1', $key);
envelope_ok($r, 200, undef, 'GET existing');
is_deeply($r->{json}{data}{customer}, $created, 'GET returns the customer');
is_deeply([keys %{ $r->{json}{data} }], ['customer'], 'data holds only customer');

$r = $env->api('GET', 'g1?foo=bar', $key);
envelope_ok($r, 200, undef, 'query string is not part of the externalId');
is($r->{json}{data}{customer}{externalId}, 'g1', '... same customer');

$r = snapshot_same('GET unknown', sub { $env->api('GET', 'nobody', $key) });
envelope_ok($r, 404, 'CUSTOMER_NOT_FOUND', 'GET unknown');

$r = snapshot_same('GET with %2F', sub { $env->api('GET', 'a%2Fb', $key) });
envelope_ok($r, 400, 'VALIDATION_ERROR', 'GET with %2F in the externalId');
fields_ok($r, [[externalId => "must not contain '/'"]], 'GET with %2F in the externalId');
$r = snapshot_same('DELETE with %2F', sub { $env->api('DELETE', 'a%2Fb', $key) });
envelope_ok($r, 400, 'VALIDATION_ERROR', 'DELETE with %2F in the externalId');
fields_ok($r, [[externalId => "must not contain '/'"]], 'DELETE with %2F in the externalId');
$r = snapshot_same('GET /customers/ (an empty externalId)', sub { $env->api('GET', '', $key) });
envelope_ok($r, 400, 'VALIDATION_ERROR', 'GET /customers/: an empty externalId');
fields_ok($r, [[externalId => 'must be 1-255 bytes']], 'GET /customers/: an empty externalId');

# ---- DELETE
my $s = $R->hget('sd:{acme}:c:g1', 's');
$r = $env->api('DELETE', 'g1', $key);
envelope_ok($r, 200, undef, 'DELETE existing');
is_deeply($r->{json}{data}, { deleted => JSON::PP::true }, 'data is {"deleted":true}');

$r = $env->api('GET', 'g1', $key);
envelope_ok($r, 404, 'CUSTOMER_NOT_FOUND', 'GET after DELETE');
ok(!$R->exists('sd:{acme}:c:g1'), 'Redis: hash gone');
is($env->email_owner('acme', 'g1@example.com'), undef, 'Redis: email index entry gone');
is($env->order_s('acme', 'g1'), undef, 'Redis: order entry gone');
$env->invariants_ok('acme');

$r = snapshot_same('DELETE again', sub { $env->api('DELETE', 'g1', $key) });
envelope_ok($r, 404, 'CUSTOMER_NOT_FOUND', 'DELETE again');
$r = snapshot_same('DELETE unknown', sub { $env->api('DELETE', 'never', $key) });
envelope_ok($r, 404, 'CUSTOMER_NOT_FOUND', 'DELETE unknown');

$r = $env->api('PATCH', 'g2', $key, { email => 'G1@example.com', name => 'G Two' });
envelope_ok($r, 200, undef, 'email of the deleted customer reusable');
is($r->{json}{data}{wasCreated}, JSON::PP::true, '... by a new customer');
$r = $env->api('PATCH', 'g1', $key, { email => 'g1-again@example.com', name => 'G One again' });
envelope_ok($r, 200, undef, 'deleted externalId reusable');
is($r->{json}{data}{wasCreated}, JSON::PP::true, '... as a new customer');
# g2 took $s + 1
is($R->hget('sd:{acme}:c:g1', 's'), $s + 2, 'the new customer gets the next sequence number, not its old one');
is($r->{json}{data}{customer}{id}, 'cus_' . ($s + 2), '... and so a new id');
isnt($r->{json}{data}{customer}{id}, $created->{id}, '... not the deleted one\'s');
$env->invariants_ok('acme');

# deleting one customer leaves the others alone
$r = $env->api('DELETE', 'g2', $key);
envelope_ok($r, 200, undef, 'DELETE g2');
$r = $env->api('GET', 'g1', $key);
envelope_ok($r, 200, undef, 'g1 still there');
$env->invariants_ok('acme');

# ---- routing
for my $case (['GET', '/api/v1/nope'], ['GET', '/api/v1/'], ['GET', '/api/v1/customerz/x'],
              ['PATCH', '/api/v1/nope'], ['GET', '/api/v1/customers/x/unknown']) {
    my ($m, $p) = @$case;
    $r = $env->request($m, $p, headers => { 'X-API-Key' => $key });
    error_ok($r, 404, 'NOT_FOUND', 'no such route', "$m $p: no such route");
}
for my $m (qw(POST PUT)) {
    $r = snapshot_same("$m one customer", sub {
        $env->api($m, 'g1', $key, { email => 'z@example.com', name => 'Z' }) });
    envelope_ok($r, 405, 'METHOD_NOT_ALLOWED', "$m /customers/{id}");
    is($r->{headers}{allow}, 'GET, HEAD, PATCH, DELETE', "$m: one Allow header, exactly GET, HEAD, PATCH, DELETE");
}
$r = $env->request('POST', '/api/v1/customers/g1');
envelope_ok($r, 405, 'METHOD_NOT_ALLOWED', '405 before the key check');
is($r->{headers}{allow}, 'GET, HEAD, PATCH, DELETE', '405 before the key check: Allow');

# ---- a customer's notes go with UNLINK (freed in the background), never DEL
envelope_ok($env->api('PATCH', 'u1', $key, { email => 'u1@example.com', name => 'U' }), 200, undef, 'setup: u1');
envelope_ok($env->api('POST', '/api/v1/customers/u1/notes', $key, { note => "note $_" }), 201, undef, "setup: note $_") for 1 .. 3;
ok($env->redis->exists('sd:{acme}:notes:u1'), 'setup: u1 has notes');
$env->redis->config_resetstat;
envelope_ok($env->api('DELETE', 'u1', $key), 200, undef, 'DELETE u1 with notes');
my $stats = $env->redis->info('commandstats');
like($stats->{cmdstat_unlink} // '', qr/^calls=1,/, 'one UNLINK took the customer and its notes');
ok(!exists $stats->{cmdstat_del}, '... and no DEL ran');
is($env->redis->exists('sd:{acme}:c:u1', 'sd:{acme}:notes:u1', 'sd:{acme}:notez:u1'), 0, '... all gone');

# ---- the other location still answers
$r = $env->request('GET', '/');
is($r->{status}, 200, 'legacy location: 200');
is($r->{body}, "legacy\n", 'legacy location: body');
$r = $env->request('GET', '/tickets/1');
is($r->{body}, "legacy\n", 'legacy location: other path');

done_testing;
