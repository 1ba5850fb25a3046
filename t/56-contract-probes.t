# Contract probes: one request for each part of the SPEC that the rest of
# t/ does not send yet (HEAD on every GET route, GET /events, the headers of
# SPEC 10 and 11, repeated query parameters, repeated Idempotency-Key).
# This file only checks that an answer comes; what the answer must be is
# openapi.yaml's to say: `make test` records every answer (SD_RECORD_DIR)
# and t/openapi/check-answers.js validates them, so an answer that breaks
# the contract fails make test unless t/openapi/allow-list.yaml names it
# (a known module bug). When the module implements these parts, the
# allow-list entries stop matching and must be removed.
# Configuration: the harness's default.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(envelope_ok wait_until);

my $env = SupportDesk::Test->new;
my $key = $env->create_key('acme', 'contract probes');

sub answered {
    my ($name, $r) = @_;
    ok($r->{status} && $r->{status} < 598, "$name: answered ($r->{status})")
        or diag($r->{error} // '');
    return $r;
}

envelope_ok($env->api('PATCH', 'p1', $key, { email => 'p1@example.com', name => 'P One' }),
            200, undef, 'setup: p1');
my $r = $env->api('POST', '/api/v1/customers/p1/notes', $key, { note => 'a note' });
envelope_ok($r, 201, undef, 'setup: a note');
$r = $env->api('POST', '/api/v1/customers/bulk-update', $key,
               { filter => { externalId => ['p1'] }, set => { phone => '123' } });
envelope_ok($r, 202, undef, 'setup: a job');
my $job = $r->{json}{data}{jobId} // 'job_1';

# SPEC 8: HEAD works wherever GET does
for my $path ('/api/v1/customers', '/api/v1/customers/p1', '/api/v1/customers/p1/notes',
              '/api/v1/customers/p1/notifications', "/api/v1/jobs/$job", '/api/v1/events') {
    answered("HEAD $path", $env->api('HEAD', $path, $key));
}

# SPEC 9: the change feed
answered('GET /events', $env->api('GET', '/api/v1/events', $key));
answered('GET /events?limit=10&wait=0', $env->api('GET', '/api/v1/events?limit=10&wait=0', $key));

# SPEC 8: repeated query parameters are refused by name
answered('GET /customers?limit=1&limit=2', $env->api('GET', '/api/v1/customers?limit=1&limit=2', $key));

# SPEC 10: Idempotency-Key, 1-255 visible ASCII; replays
my %ik = (headers => { 'Idempotency-Key' => 'probe-1' });
answered('upsert with an Idempotency-Key', $env->api('PATCH', 'p2', $key, { email => 'p2@example.com', name => 'P Two' }, %ik));
answered('the same again (a replay)', $env->api('PATCH', 'p2', $key, { email => 'p2@example.com', name => 'P Two' }, %ik));
answered('Idempotency-Key of 256 characters',
         $env->api('PATCH', 'p1', $key, { name => 'P' }, headers => { 'Idempotency-Key' => 'k' x 256 }));
answered('Idempotency-Key sent twice',
         $env->api('PATCH', 'p1', $key, { name => 'P' }, headers => { 'Idempotency-Key' => ['a', 'b'] }));

# SPEC 11: conditional requests
answered('GET with If-None-Match', $env->api('GET', 'p1', $key, undef, headers => { 'If-None-Match' => '"nope"' }));
answered('PATCH with an If-Match that does not hold',
         $env->api('PATCH', 'p1', $key, { name => 'P' }, headers => { 'If-Match' => '"nope"' }));
answered('DELETE with If-Match: * of a customer that does not exist',
         $env->api('DELETE', 'nobody', $key, undef, headers => { 'If-Match' => '*' }));
answered('PATCH with If-None-Match: * on an existing customer',
         $env->api('PATCH', 'p1', $key, { name => 'P' }, headers => { 'If-None-Match' => '*' }));

done_testing;
