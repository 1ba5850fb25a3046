# Metadata numbers come back exactly as sent (0.1, not 0.10000000000000001;
# 12345678901234561 with all its digits; 1E2 as 1E2), through the upsert,
# a batch, a bulk update and the change feed, and are stored so in Redis.
# Exact filters compare numbers by their exact decimal value, never through
# a double: metadata.acct=12345678901234561 matches that customer only, a
# %.14g rendering matches nothing, 0.1 matches 0.10 and 1e-1 too, and a
# bulk-update filter {"metadata.score":0.1} matches what the listing does.
# Configuration: the harness's default.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(envelope_ok json_encode json_decode wait_until pct);


my $env = SupportDesk::Test->new;
my $key = $env->create_key('acme', 'metadata numbers');
my $R = $env->redis;
my $r;

# the body is sent as this text: no JSON encoder rewrites its numbers
sub upsert {
    my ($ext, $meta) = @_;
    return $env->api('PATCH', $ext, $key, qq({"email":"$ext\@acme.com","name":"N $ext","metadata":$meta}));
}
# the metadata of a customer object, as the answer's text carries it
sub meta_text {
    my ($body) = @_;
    return $body =~ /"metadata":(\{.*?\}),"createdAt"/ ? $1 : '(none)';
}
sub listed {
    my ($q) = @_;
    my $r = $env->api('GET', '/api/v1/customers?limit=100&' . $q, $key);
    return join ',', sort map { $_->{externalId} } @{ $r->{json}{data}{customers} || [] };
}

# ---- round trip
my $sent = '{ "score" : 0.1, "acct": 12345678901234561, "e": 1E2, "neg": -0.0,'
         . ' "tiny": 1e-400, "arr": [0.10, 1.5e+3], "n": {"x": 0.30000000000000004}, "s": "\u00e9" }';
my $compact = '{"score":0.1,"acct":12345678901234561,"e":1E2,"neg":-0.0,"tiny":1e-400,'
            . '"arr":[0.10,1.5e+3],"n":{"x":0.30000000000000004},"s":"' . "\xc3\xa9" . '"}';
$r = upsert('rt', $sent);
envelope_ok($r, 200, undef, 'an upsert with numbers jansson cannot keep');
is(meta_text($r->{body}), $compact, 'the upsert answers them as sent (compact)');
is($R->hget('sd:{acme}:c:rt', 'm'), $compact, 'Redis stores them as sent');
$r = $env->api('GET', 'rt', $key);
is(meta_text($r->{body}), $compact, 'GET answers them as sent');

# a batch item, parsed on its own
$r = $env->api('PATCH', '/api/v1/customers', $key,
    '{"customers":[{"externalId":"bt","email":"bt@acme.com","name":"B","metadata":{"v":0.1,"w":12345678901234561}}]}');
envelope_ok($r, 200, undef, 'a batch with numbers');
is($R->hget('sd:{acme}:c:bt', 'm'), '{"v":0.1,"w":12345678901234561}', 'a batch item stores them as sent');

# the change feed carries the stored text
$r = $env->api('GET', '/api/v1/events?limit=1000', $key);
my ($created) = grep { $_->{type} eq 'customer.created' && $_->{externalId} eq 'rt' } @{ $r->{json}{data}{events} || [] };
ok($created, 'the feed has the creation');
like($r->{body}, qr/"metadata":\Q$compact\E/, 'the feed carries the numbers as sent');

# ---- exact filters
upsert('big1', '{"acct":12345678901234561}');
upsert('big0', '{"acct":12345678901234560}');
upsert('big2', '{"acct":"12345678901234561"}');
upsert('sc1', '{"score":0.1,"plan":"pro"}');
upsert('sc2', '{"score":0.10,"plan":"pro"}');
upsert('sc3', '{"score":"0.1","plan":"pro"}');
upsert('sc4', '{"score":0.30000000000000004,"plan":"pro"}');
upsert('sc5', '{"score":0.10000000000000001,"plan":"pro"}');
upsert('int', '{"n":100,"flag":true,"z":null}');

is(listed('metadata.acct=12345678901234561'), 'big1,big2,rt', 'acct=12345678901234561: that number (and that string) only');
is(listed('metadata.acct=12345678901234560'), 'big0', 'acct=12345678901234560: the other one');
is(listed('metadata.acct=1.2345678901235e%2B16'), '', 'the %.14g text of both matches neither');
is(listed('metadata.acct=1.2345678901234560e16'), 'big0', 'the same value written otherwise');
is(listed('metadata.score=0.1'), 'rt,sc1,sc2,sc3', 'score=0.1: 0.1, 0.10 and the string "0.1"');
is(listed('metadata.score=1e-1'), 'rt,sc1,sc2', 'score=1e-1: the numbers of that value, not the string');
is(listed('metadata.score=0.10000000000000001'), 'sc5', 'a longer decimal is another number');
is(listed('metadata.score=0.30000000000000004'), 'sc4', 'score=0.30000000000000004 exactly');
is(listed('metadata.n=100'), 'int', 'n=100');
is(listed('metadata.n=1E2'), 'int', 'n=1E2 is the same number');
is(listed('metadata.n=100.5'), '', 'n=100.5 is not');
is(listed('metadata.e=100'), 'rt', 'a stored 1E2 matches 100');
is(listed('metadata.neg=0'), 'rt', 'a stored -0.0 is zero');
is(listed('metadata.flag=true'), 'int', 'booleans by their text');
is(listed('metadata.z=null'), '', 'null matches nothing');
is(listed('metadata.score=0.1&metadata.plan=pro'), 'sc1,sc2,sc3', 'two filters, both exact');
is(listed('metadata.s=' . pct("\xc3\xa9")), 'rt', 'a string sent escaped matches its value');

# ---- bulk update: the filter's number as sent
sub bulk_job {
    my ($body) = @_;
    my $r = $env->api('POST', '/api/v1/customers/bulk-update', $key, $body);
    envelope_ok($r, 202, undef, "bulk-update $body") or return {};
    my $id = $r->{json}{data}{jobId};
    my $job = {};
    wait_until(sub {
        $job = $env->api('GET', "/api/v1/jobs/$id", $key)->{json}{data}{job} || {};
        ($job->{status} // '') =~ /^(done|failed)$/;
    }, 30, 0.1);
    return $job;
}
my $job = bulk_job('{"filter":{"metadata.score":0.1},"set":{"name":"Point One"}}');
is($job->{status}, 'done', 'the job with {"metadata.score":0.1} is done');
is($job->{matched}, 4, 'it matched 0.1, 0.10 and "0.1" (and rt)');
is(join(',', sort grep { ($R->hget("sd:{acme}:c:$_", 'n') // '') eq 'Point One' } qw(rt sc1 sc2 sc3 sc4 sc5)),
   'rt,sc1,sc2,sc3', 'exactly those were renamed');
$job = bulk_job('{"filter":{"metadata.acct":12345678901234561},"set":{"metadata":{"acct":12345678901234563,"f":2.50}}}');
is($job->{matched}, 3, 'a filter on a big integer matches it exactly (and its string)');
is($R->hget('sd:{acme}:c:big1', 'm'), '{"acct":12345678901234563,"f":2.50}', 'set.metadata is stored as sent');
is($R->hget('sd:{acme}:c:big0', 'm'), '{"acct":12345678901234560}', 'the neighbour number is untouched');

ok($env->invariants_ok('acme'), 'data invariants hold');

done_testing;
