# Conditional requests: ETag on GET and upsert answers, changed by every
# change; If-None-Match on GET (304); If-Match and If-None-Match: * on
# PATCH, If-Match on DELETE, evaluated in the write script (412, nothing
# changed, no event); two writers with one ETag: exactly one wins; nginx's
# own not-modified filter does not judge the API's answers.
# Configuration: the harness's default.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(envelope_ok error_ok fields_ok);

my $env = SupportDesk::Test->new;
my $key = $env->create_key('acme');
my $R = $env->redis;

sub etag { $_[0]{headers}{etag} }
sub cond { my ($m, $ext, $h, $body) = @_; $env->api($m, $ext, $key, $body, headers => $h) }
sub nevents { $R->hget('sd:{acme}:eventseq', 'n') // 0 }
# a 412: the envelope, nothing changed, no event
sub precondition_failed {
    my ($name, $do, $header) = @_;
    my $before = $env->snapshot;
    my $r = $do->();
    error_ok($r, 412, 'PRECONDITION_FAILED', undef, $name);
    fields_ok($r, [[$header, 'does not hold']], $name);
    is_deeply($env->snapshot, $before, "$name: nothing changed, no event");
    return $r;
}

# ---------------------------------------------------------------- ETag
my $r = $env->api('PATCH', 'k1', $key, { email => 'k1@acme.com', name => 'K One' });
envelope_ok($r, 200, undef, 'create');
my $e1 = etag($r);
like($e1, qr/^"\d+-1"$/, "the create answers an ETag ($e1)");
$r = $env->api('GET', 'k1', $key);
is(etag($r), $e1, 'GET answers the same ETag');
$r = $env->api('PATCH', 'k1', $key, { name => 'K Uno' });
my $e2 = etag($r);
isnt($e2, $e1, "a change changes it ($e2)");
is(etag($env->api('GET', 'k1', $key)), $e2, 'GET: the new one');
$r = $env->api('PATCH', 'k1', $key, { name => 'K Uno' });
is(etag($r), $e2, 'an update that changes nothing keeps it');
$r = $env->api('POST', '/api/v1/customers/bulk-update', $key, { filter => { externalId => ['k1'] }, set => { phone => '9' } });
my $job = $r->{json}{data}{jobId};
SupportDesk::Test::wait_until(sub { ($env->api('GET', "/api/v1/jobs/$job", $key)->{json}{data}{job}{status} // '') eq 'done' }, 20, 0.1);
ok($env->jobs_idle('acme'), 'the job done, its app out of the registry of apps with work');
my $e3 = etag($env->api('GET', 'k1', $key));
isnt($e3, $e2, "a bulk-update change changes it too ($e3)");
ok(!exists $env->api('GET', 'nobody', $key)->{headers}{etag}, 'no ETag on a 404');

# a deleted and created again customer does not take an old ETag back
envelope_ok($env->api('PATCH', 'k2', $key, { email => 'k2@acme.com', name => 'K Two' }), 200, undef, 'create k2');
my $old = etag($env->api('GET', 'k2', $key));
envelope_ok($env->api('DELETE', 'k2', $key), 200, undef, 'delete k2');
my $new = etag($env->api('PATCH', 'k2', $key, { email => 'k2@acme.com', name => 'K Two' }));
isnt($new, $old, "created again: another ETag ($old, then $new)");

# ---------------------------------------------------------------- If-None-Match on GET
for my $case ([ 'the current ETag', $e3 ], [ 'W/ and the current', "W/$e3" ], [ 'a list with it', "\"1-1\", $e3" ],
              [ '*', '*' ]) {
    my ($name, $v) = @$case;
    $r = cond('GET', 'k1', { 'If-None-Match' => $v });
    is($r->{status}, 304, "If-None-Match $name: 304");
    is(etag($r), $e3, "If-None-Match $name: with the ETag");
    is($r->{body}, '', "If-None-Match $name: no body");
}
$r = cond('GET', 'k1', { 'If-None-Match' => $e1 });
envelope_ok($r, 200, undef, 'If-None-Match with an old ETag: 200');
is(etag($r), $e3, '... with the current ETag');
$r = cond('GET', 'nobody', { 'If-None-Match' => '*' });
error_ok($r, 404, 'CUSTOMER_NOT_FOUND', undef, 'If-None-Match: * on no customer: 404');
$r = cond('GET', 'k1', { 'If-None-Match' => 'garbage' });
error_ok($r, 400, 'VALIDATION_ERROR', undef, 'If-None-Match that is no list of entity tags');
fields_ok($r, [['If-None-Match', 'must be * or a list of entity tags']], 'If-None-Match garbage');

# ---------------------------------------------------------------- If-Match on PATCH
my $n0 = nevents();
precondition_failed('If-Match with an old ETag', sub { cond('PATCH', 'k1', { 'If-Match' => $e1 }, { name => 'Lost' }) }, 'If-Match');
precondition_failed('If-Match with the weak form of the current one', sub {
    cond('PATCH', 'k1', { 'If-Match' => "W/$e3" }, { name => 'Lost' }) }, 'If-Match');
precondition_failed('If-Match: * on no customer', sub { cond('PATCH', 'k9', { 'If-Match' => '*' },
                                                           { email => 'k9@acme.com', name => 'K9' }) }, 'If-Match');
precondition_failed('If-Match: an ETag on no customer', sub { cond('PATCH', 'k9', { 'If-Match' => $e3 },
                                                                 { email => 'k9@acme.com', name => 'K9' }) }, 'If-Match');
is(nevents(), $n0, 'no event for any of them');
$r = cond('PATCH', 'k1', { 'If-Match' => $e3 }, { name => 'Won' });
envelope_ok($r, 200, undef, 'If-Match with the current ETag: applied');
my $e4 = etag($r);
isnt($e4, $e3, '... with a new ETag');
$r = cond('PATCH', 'k1', { 'If-Match' => "\"1-1\", $e4" }, { name => 'Won again' });
envelope_ok($r, 200, undef, 'If-Match with a list holding the current one');
$r = cond('PATCH', 'k1', { 'If-Match' => '*' }, { name => 'Any' });
envelope_ok($r, 200, undef, 'If-Match: * on a customer');
for my $bad ('abc', '"1-1", abc', '"1-1" "1-2"', '"unterminated') {
    $r = cond('PATCH', 'k1', { 'If-Match' => $bad }, { name => 'X' });
    error_ok($r, 400, 'VALIDATION_ERROR', undef, "If-Match '$bad': 400");
    fields_ok($r, [['If-Match', 'must be * or a list of entity tags']], "If-Match '$bad'");
}
# nginx itself refuses a second If-Match or If-None-Match line (a unique
# header to it); the filter answers in the envelope
for my $h ('If-Match', 'If-None-Match') {
    my $before = $env->snapshot;
    $r = cond('PATCH', 'k1', { $h => [$e4, $e4] }, { name => 'X' });
    error_ok($r, 400, 'VALIDATION_ERROR', 'the request is malformed', "$h twice: 400");
    is_deeply($env->snapshot, $before, "$h twice: nothing changed");
}

# ---------------------------------------------------------------- If-None-Match: * on PATCH: create only
precondition_failed('If-None-Match: * on an existing customer', sub {
    cond('PATCH', 'k1', { 'If-None-Match' => '*' }, { name => 'Replace' }) }, 'If-None-Match');
$r = cond('PATCH', 'k3', { 'If-None-Match' => '*' }, { email => 'k3@acme.com', name => 'K Three' });
envelope_ok($r, 200, undef, 'If-None-Match: * on no customer: created, 200 with a body (not nginx\'s 304)');
is($r->{json}{data}{wasCreated}, JSON::PP::true, '... wasCreated');
like(etag($r), qr/^"\d+-1"$/, '... with its ETag');
$r = cond('PATCH', 'k1', { 'If-None-Match' => $e4 }, { name => 'X' });
fields_ok($r, [['If-None-Match', 'must be * on a write']], 'If-None-Match with tags on a PATCH: 400');

# ---------------------------------------------------------------- If-Match on DELETE
my $ek3 = etag($env->api('GET', 'k3', $key));
precondition_failed('DELETE with an old ETag', sub { cond('DELETE', 'k3', { 'If-Match' => '"1-99"' }) }, 'If-Match');
precondition_failed('DELETE, If-Match: * on no customer', sub { cond('DELETE', 'nobody', { 'If-Match' => '*' }) }, 'If-Match');
$r = cond('DELETE', 'k3', { 'If-Match' => $ek3 });
envelope_ok($r, 200, undef, 'DELETE with the current ETag');
error_ok($env->api('GET', 'k3', $key), 404, 'CUSTOMER_NOT_FOUND', undef, '... deleted');

# ---------------------------------------------------------------- two writers, one ETag
for my $round (1 .. 3) {
    my $cur = etag($env->api('GET', 'k1', $key));
    my @res = $env->parallel([ map { $env->http_bytes('PATCH', '/api/v1/customers/k1',
                                     headers => { 'X-API-Key' => $key, 'If-Match' => $cur },
                                     body => { name => "Writer $round.$_" }) } 1 .. 12 ], timeout => 10);
    my @won = grep { $_->{status} == 200 } @res;
    is(scalar @won, 1, "round $round: of 12 writers holding $cur, exactly one wins");
    is(scalar(grep { $_->{status} == 412 } @res), 11, "round $round: the 11 others get 412");
    is($env->api('GET', 'k1', $key)->{json}{data}{customer}{name}, $won[0]{json}{data}{customer}{name},
       "round $round: the winner's change is the one stored");
}

$env->invariants_ok('acme');
done_testing;
