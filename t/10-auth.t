# X-API-Key: missing / empty / unknown / revoked, key cache, tenant isolation,
# $supportdesk_app (also as limit_req's key: 429 RATE_LIMITED).
# Configuration: http{} supportdesk_key_cache_ttl 2s and
# supportdesk_key_cache_negative_ttl 1s; location /api/v1/ adds
# `add_header X-App $supportdesk_app always`; a second environment with
# limit_req keyed on $supportdesk_app (1r/m, burst 1, limit_req_status 429)
# and supportdesk_key_cache_ttl 1s.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use SupportDesk::Test qw(envelope_ok error_ok fields_ok);

my $env = SupportDesk::Test->new(
    http_conf => 'supportdesk_key_cache_ttl 2s; supportdesk_key_cache_negative_ttl 1s;',
    location_conf => 'add_header X-App $supportdesk_app always;',
);
my $r;
my $cust = { email => 'john@acme.com', name => 'John Doe' };

# ---- missing / empty / unknown
$r = $env->api('GET', 'user_1', undef);
envelope_ok($r, 401, 'UNAUTHORIZED', 'GET without X-API-Key');
ok(!defined $r->{headers}{'x-app'} || $r->{headers}{'x-app'} eq '',
   '$supportdesk_app is empty without a key');

$r = $env->api('PATCH', 'user_1', undef, $cust);
envelope_ok($r, 401, 'UNAUTHORIZED', 'PATCH without X-API-Key');

$r = $env->raw_request("GET /api/v1/customers/user_1 HTTP/1.1\r\nHost: x\r\n"
    . "X-API-Key: \r\nConnection: close\r\n\r\n");
envelope_ok($r, 401, 'UNAUTHORIZED', 'empty X-API-Key');

$r = $env->api('GET', 'user_1', 'sdk_does_not_exist');
envelope_ok($r, 401, 'UNAUTHORIZED', 'unknown key');
ok(!defined $r->{headers}{'x-app'} || $r->{headers}{'x-app'} eq '',
   '$supportdesk_app is empty for an unknown key');

# ---- order of checks (README): a body over the location's largest limit
# (the batch one) is refused by nginx before anything else; then route, key
# presence, key lookup (an unknown key never has its body parsed), the
# route's body limit, Content-Type, JSON and rules
$r = $env->request('GET', '/api/v1/nope');
error_ok($r, 404, 'NOT_FOUND', 'no such route', 'unknown route without a key: 404 first');
$r = $env->api('PATCH', 'user_1', undef, '{"email":');
envelope_ok($r, 401, 'UNAUTHORIZED', 'missing key is checked before the body');
$r = $env->api('PATCH', 'user_1', 'sdk_does_not_exist', '{"email":');
envelope_ok($r, 401, 'UNAUTHORIZED', 'unknown key is refused before the body is parsed');
$r = $env->api('PATCH', 'user_1', 'sdk_does_not_exist', { email => 'a@b.co', name => 'x' },
               headers => { 'Content-Type' => 'text/plain' });
envelope_ok($r, 401, 'UNAUTHORIZED', 'unknown key is refused before the Content-Type check');
$r = $env->api('PATCH', 'user_1', 'sdk_does_not_exist', '{' . ('x' x 70000) . '}');
envelope_ok($r, 401, 'UNAUTHORIZED', 'unknown key is refused before the route\'s body limit');
$r = $env->api('PATCH', 'user_1', 'sdk_does_not_exist', '{' . ('x' x 1_100_000) . '}');
# KNOWN FAILING (module bug): the message names the location's largest
# limit (1048576) instead of this route's (65536), see 20-upsert.t
error_ok($r, 413, 'PAYLOAD_TOO_LARGE', 'body is over the limit of 65536 bytes',
         "a body over every limit of the location is refused first, naming the route's limit");
$r = $env->api('PATCH', 'user_1', 'sdk_does_not_exist', { email => 'bad', name => 'x' });
envelope_ok($r, 401, 'UNAUTHORIZED', 'unknown key is refused before the field rules');
# and with a valid key, the same body reaches the rules
my $keyV = $env->create_key('acme', 'order of checks');
$r = $env->api('PATCH', 'user_1', $keyV, '{' . ('x' x 70000) . '}');
error_ok($r, 413, 'PAYLOAD_TOO_LARGE', 'body is over the limit of 65536 bytes',
         "a known key: the route's body limit (413) before Content-Type and JSON");
$r = $env->api('PATCH', 'user_1', $keyV, { email => 'a@b.co', name => 'x' },
               headers => { 'Content-Type' => 'text/plain' });
envelope_ok($r, 415, 'UNSUPPORTED_MEDIA_TYPE', 'a known key: Content-Type (415) before the JSON');
$r = $env->api('PATCH', 'user_1', $keyV, '{"email":');
error_ok($r, 400, 'INVALID_JSON', 'body is not valid JSON', 'a known key: the JSON (400) before the rules');
$r = $env->api('PATCH', 'user_1', $keyV, { email => 'bad', name => 'x' });
envelope_ok($r, 400, 'VALIDATION_ERROR', 'a known key: the rules');
fields_ok($r, [[email => 'must be a valid email address']], 'a known key: the rules');
$env->revoke_key($keyV);

is_deeply([grep { !/^sd:apikey:/ } keys %{ $env->snapshot }], [],
          'no customer data written by refused requests');

# ---- a valid key
my $keyA = $env->create_key('acme', 'acme test');
$r = $env->api('PATCH', 'user_1', $keyA, $cust);
envelope_ok($r, 200, undef, 'valid key: upsert works');
is($r->{headers}{'x-app'}, 'acme', '$supportdesk_app is the app of the key');
$r = $env->api('GET', 'user_1', $keyA);
envelope_ok($r, 200, undef, 'valid key: GET works');
is($r->{headers}{'x-app'}, 'acme', '$supportdesk_app on GET');

(my $other_case = $keyA) =~ tr/a-z/A-Z/;
$r = $env->api('GET', 'user_1', $other_case);
envelope_ok($r, 401, 'UNAUTHORIZED', 'keys are case-sensitive');

# ---- revocation: works from the cache, then 401 after the ttl (2s)
my $keyR = $env->create_key('acme', 'to revoke');
$r = $env->api('GET', 'user_1', $keyR);
envelope_ok($r, 200, undef, 'key to revoke works');
$env->revoke_key($keyR);
$r = $env->api('GET', 'user_1', $keyR);
envelope_ok($r, 200, undef, 'revoked key still answered from the key cache right away');
sleep 3.2;
$r = $env->api('GET', 'user_1', $keyR);
envelope_ok($r, 401, 'UNAUTHORIZED', 'revoked key refused once the cache ttl passed');
is($r->{headers}{'x-app'} // '', '', 'no $supportdesk_app for a revoked key');

# ---- negative cache: an unknown key that gets provisioned works after the
# negative ttl (1s)
my $late = 'sdk_late_' . int(rand 1e9);
$r = $env->api('GET', 'user_1', $late);
envelope_ok($r, 401, 'UNAUTHORIZED', 'key not provisioned yet');
$env->create_key('acme', 'late', $late);
sleep 2.2;
$r = $env->api('GET', 'user_1', $late);
envelope_ok($r, 200, undef, 'newly provisioned key works after the negative ttl');

# a flood of one bad key does not become a flood of Redis lookups
{
    my $bad = 'sdk_flood_' . int(rand 1e9);
    my $before = $env->redis->info('stats');
    my @res = map { $env->api('GET', 'user_1', $bad) } 1 .. 30;    # one after the other
    my $after = $env->redis->info('stats');
    is(scalar(grep { !SupportDesk::Test::_envelope_problems($_, 401, 'UNAUTHORIZED') } @res), 30,
       '30 requests with a bad key: all the 401 envelope');
    my $delta = $after->{total_commands_processed} - $before->{total_commands_processed};
    cmp_ok($delta, '<=', 8, "30 bad-key requests cost at most a few Redis commands (got $delta)");
}

# ---- tenant isolation
my $keyB = $env->create_key('globex', 'globex test');
$r = $env->api('GET', 'user_1', $keyB);
envelope_ok($r, 404, 'CUSTOMER_NOT_FOUND', "app B cannot see app A's customer");
is($r->{headers}{'x-app'}, 'globex', '$supportdesk_app is app B');
$r = $env->api('DELETE', 'user_1', $keyB);
envelope_ok($r, 404, 'CUSTOMER_NOT_FOUND', "app B cannot delete app A's customer");
ok($env->redis->exists('sd:{acme}:c:user_1'), "A's customer still there");

$r = $env->api('PATCH', 'user_1', $keyB, { email => 'john@acme.com', name => 'Globex John' });
envelope_ok($r, 200, undef, 'app B upserts its own user_1 (same email, other app)');
is($r->{json}{data}{wasCreated}, JSON::PP::true, 'created in app B');
is($r->{json}{data}{customer}{name}, 'Globex John', "B's customer returned");

$r = $env->api('GET', 'user_1', $keyA);
is($r->{json}{data}{customer}{name}, 'John Doe', "A's user_1 unchanged");
$r = $env->api('GET', 'user_1', $keyB);
is($r->{json}{data}{customer}{name}, 'Globex John', "B's user_1 readable by B");

my $redis = $env->redis;
is($redis->hget('sd:{acme}:c:user_1', 'n'), 'John Doe', 'Redis: acme hash');
is($redis->hget('sd:{globex}:c:user_1', 'n'), 'Globex John', 'Redis: globex hash');
is($env->email_owner('acme', 'john@acme.com'), 'user_1', 'Redis: acme email index');
is($env->email_owner('globex', 'john@acme.com'), 'user_1', 'Redis: globex email index');
my @stray = grep { !/^sd:apikey:/ && !/^sd:\{(acme|globex)\}:/ } keys %{ $env->snapshot };
is_deeply(\@stray, [], 'every customer key carries its {app} tag') or diag "@stray";

$env->invariants_ok('acme');
$env->invariants_ok('globex');

# ---- $supportdesk_app keys limit_req (README): 429 RATE_LIMITED in the
# envelope, per app; requests without a known key are not counted. The key
# cache answers before limit_req, Redis after it: the first request of a
# key the cache has never seen is not counted; from then on every one is,
# also past the cache's ttl (the cache still knows the app, and asks Redis
# again after limit_req)
{
    my $rl = SupportDesk::Test->new(
        http_conf     => 'limit_req_zone $supportdesk_app zone=per_app:1m rate=1r/m;'
                       . ' supportdesk_key_cache_ttl 1s;',
        location_conf => 'limit_req zone=per_app burst=1 nodelay; limit_req_status 429;',
    );
    my $ka = $rl->create_key('acme', 'rate limited');
    my $kb = $rl->create_key('globex', 'rate limited too');
    envelope_ok($rl->api('GET', 'nobody', $ka), 404, 'CUSTOMER_NOT_FOUND',
                'limit_req: the first request of a key never seen passes, not counted');
    envelope_ok($rl->api('GET', 'nobody', $ka), 404, 'CUSTOMER_NOT_FOUND', 'limit_req: the 1st counted request of acme passes');
    envelope_ok($rl->api('GET', 'nobody', $ka), 404, 'CUSTOMER_NOT_FOUND', 'limit_req: the 2nd (the burst) passes');
    $r = $rl->refused('limit_req: the 3rd counted request of acme within the minute', 429, 'RATE_LIMITED',
                      sub { $rl->api('PATCH', 'rl1', $ka, { email => 'rl@acme.com', name => 'RL' }) });
    sleep 1.5;
    $r = $rl->refused("limit_req: past the key cache's ttl acme is still counted", 429, 'RATE_LIMITED',
                      sub { $rl->api('GET', 'nobody', $ka) });
    envelope_ok($rl->api('GET', 'nobody', $kb), 404, 'CUSTOMER_NOT_FOUND', 'limit_req: another app has its own count');
    envelope_ok($rl->api('GET', 'nobody', undef), 401, 'UNAUTHORIZED', "limit_req: no key is 401, not 429 ($_)")
        for 1 .. 3;
    # a revoked key past the ttl: counted (its 1st counted request), then
    # asked again and refused
    $rl->revoke_key($kb);
    sleep 1.5;
    envelope_ok($rl->api('GET', 'nobody', $kb), 401, 'UNAUTHORIZED', 'limit_req: a revoked key past the ttl is 401');
}

done_testing;
