# Idempotency-Key on every write route: a replay answers the recorded
# status and data with Idempotent-Replayed: true and changes nothing, emits
# nothing; another request under the same key is 422; a request refused
# before storage records nothing; keys are per app; concurrent duplicates
# apply once; a batch whose end was lost replays item by item; a replay
# is read from its record without running the script; a write answered 504
# while Redis stalled made nothing, and its retry applies it once; records
# expire.
# Configuration: the harness's default (supportdesk_redis_timeout 1s), plus
# a location /short/ with supportdesk_idempotency_ttl 2s.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use SupportDesk::Test qw(envelope_ok error_ok fields_ok json_encode json_decode wait_until);

my $env = SupportDesk::Test->new(
    server_conf => 'location /short/ { supportdesk; supportdesk_idempotency_ttl 2s; }',
);
my $key = $env->create_key('acme');
my $other = $env->create_key('other');
my $R = $env->redis;

sub idem {
    my ($method, $path, $k, $body, $ikey, %o) = @_;
    return $env->api($method, $path, $k, $body,
                     headers => { (defined $ikey ? ('Idempotency-Key' => $ikey) : ()), %{ $o{headers} || {} } },
                     %o);
}
sub nevents { $R->hget("sd:{$_[0]}:eventseq", 'n') // 0 }
sub same_answer {
    my ($name, $first, $again) = @_;
    is($again->{status}, $first->{status}, "$name: the same status");
    is_deeply($again->{json}{data}, $first->{json}{data}, "$name: the same data");
    is($again->{headers}{'idempotent-replayed'}, 'true', "$name: Idempotent-Replayed: true");
    ok(!exists $first->{headers}{'idempotent-replayed'}, "$name: the first answer is not marked replayed");
}
# a replay: the recorded answer, nothing changed, nothing emitted
sub replayed_ok {
    my ($name, $do, $first) = @_;
    my $before = $env->snapshot;
    my $again = $do->();
    same_answer($name, $first, $again);
    is_deeply($env->snapshot, $before, "$name: the replay changed nothing (no event either)");
    return $again;
}

envelope_ok($env->api('PATCH', 'base', $key, { email => 'base@acme.com', name => 'Base' }), 200, undef, 'setup');

# ---------------------------------------------------------------- each write route
my %first;
my @routes = (
    [ 'upsert (create)', 'PATCH', 'c1', { email => 'c1@acme.com', name => 'C One' }, 200 ],
    [ 'upsert (update)', 'PATCH', 'c1', { name => 'C Uno' }, 200 ],
    [ 'note', 'POST', '/api/v1/customers/c1/notes', { note => 'hello' }, 201 ],
    [ 'notifications', 'PATCH', '/api/v1/customers/c1/notifications', { newTicket => JSON::PP::false }, 200 ],
    [ 'batch', 'PATCH', '/api/v1/customers', { customers => [
        { externalId => 'b1', email => 'b1@acme.com', name => 'B1' },
        { externalId => 'b2', email => 'base@acme.com', name => 'B2 taken' },
        { externalId => 'b3', email => 'bad', name => 'B3' },
      ] }, 200 ],
);
for my $rt (@routes) {
    my ($name, $m, $p, $body, $status) = @$rt;
    (my $k = "key-$name") =~ s/[^A-Za-z0-9-]/-/g;
    my $n0 = nevents('acme');
    my $r = idem($m, $p, $key, $body, $k);
    envelope_ok($r, $status, undef, "$name: first request") or next;
    cmp_ok(nevents('acme'), '>', $n0, "$name: the change emitted its events");
    $first{$name} = $r;
    replayed_ok("$name: replay", sub { idem($m, $p, $key, $body, $k) }, $r);
}
is($first{'upsert (create)'}{json}{data}{wasCreated}, JSON::PP::true, 'the create was a create');
is($first{'note'}{json}{data}{note}{id}, idem('POST', '/api/v1/customers/c1/notes', $key, { note => 'hello' },
   'key-note')->{json}{data}{note}{id}, 'a replayed note creation: the same note id, no second note');
is(scalar @{ $env->api('GET', '/api/v1/customers/c1/notes', $key)->{json}{data}{notes} }, 1, 'one note');

{
    # note delete and customer delete
    my $n = $env->api('POST', '/api/v1/customers/c1/notes', $key, { note => 'to go' })->{json}{data}{note}{id};
    my $r = idem('DELETE', "/api/v1/customers/c1/notes/$n", $key, undef, 'del-note');
    envelope_ok($r, 200, undef, 'note delete');
    replayed_ok('note delete: replay', sub { idem('DELETE', "/api/v1/customers/c1/notes/$n", $key, undef, 'del-note') }, $r);
    envelope_ok($env->api('PATCH', 'd1', $key, { email => 'd1@acme.com', name => 'D' }), 200, undef, 'setup d1');
    $r = idem('DELETE', 'd1', $key, undef, 'del-d1');
    envelope_ok($r, 200, undef, 'customer delete');
    replayed_ok('customer delete: replay, not 404', sub { idem('DELETE', 'd1', $key, undef, 'del-d1') }, $r);
}

{
    # bulk-update: 409 while the job is not finished, then the same job id
    my $body = { filter => { externalId => ['c1'] }, set => { phone => '42' } };
    my $r = idem('POST', '/api/v1/customers/bulk-update', $key, $body, 'job-1');
    envelope_ok($r, 202, undef, 'bulk-update');
    my $job = $r->{json}{data}{jobId};
    my $again = idem('POST', '/api/v1/customers/bulk-update', $key, $body, 'job-1');
    my $st = $env->api('GET', "/api/v1/jobs/$job", $key)->{json}{data}{job}{status};
    if ($st eq 'done') {
        # the runner took it within the few ms between the two requests
        diag 'the job was done before the duplicate came';
        same_answer('bulk-update: the job finished at once, replay', $r, $again);
    } else {
        error_ok($again, 409, 'IDEMPOTENCY_KEY_IN_USE', undef, 'bulk-update: the same key while its job runs');
    }
    ok(wait_until(sub { ($env->api('GET', "/api/v1/jobs/$job", $key)->{json}{data}{job}{status} // '') eq 'done' }, 20, 0.1),
       'the job finishes');
    ok($env->jobs_idle('acme'), '... its app out of the registry of apps with work');
    replayed_ok('bulk-update: after the job, replay', sub { idem('POST', '/api/v1/customers/bulk-update', $key, $body, 'job-1') }, $r);
    is($R->get('sd:{acme}:jobseq'), 1, 'one job');
}

# ---------------------------------------------------------------- the same key, another request
{
    my $body = { email => 'c1@acme.com', name => 'C Uno' };
    my $before = $env->snapshot;
    error_ok(idem('PATCH', 'c1', $key, { name => 'Another body' }, 'key-upsert--update-'), 422, 'IDEMPOTENCY_KEY_REUSED', undef,
             'the same key with another body');
    error_ok(idem('PATCH', 'c2', $key, { name => 'C Uno' }, 'key-upsert--update-'), 422, 'IDEMPOTENCY_KEY_REUSED', undef,
             'the same key on another customer');
    error_ok(idem('DELETE', 'c1', $key, undef, 'key-upsert--update-'), 422, 'IDEMPOTENCY_KEY_REUSED', undef,
             'the same key with another method');
    error_ok(idem('POST', '/api/v1/customers/c1/notes', $key, { note => 'x' }, 'key-upsert--update-'), 422,
             'IDEMPOTENCY_KEY_REUSED', undef, 'the same key on another route');
    my $r = $env->api('PATCH', 'c1', $key, '{"name": "C Uno"}', headers => { 'Idempotency-Key' => 'key-upsert--update-' });
    error_ok($r, 422, 'IDEMPOTENCY_KEY_REUSED', undef, 'the same JSON, other bytes: another body');
    is_deeply($env->snapshot, $before, 'none of them changed anything');
}

# ---------------------------------------------------------------- refused before storage: nothing recorded
{
    my $k = 'fix-and-retry';
    error_ok(idem('PATCH', 'f1', $key, { email => 'not an email', name => 'F' }, $k), 400, 'VALIDATION_ERROR', undef, 'refused with 400');
    error_ok(idem('PATCH', 'f1', 'sdk_unknown', { email => 'f1@acme.com', name => 'F' }, $k), 401, 'UNAUTHORIZED', undef, 'refused with 401');
    error_ok(idem('PATCH', 'f1', $key, '{', $k), 400, 'INVALID_JSON', 'body is not valid JSON', 'refused: INVALID_JSON');
    error_ok(idem('PATCH', 'f1', $key, { email => 'f1@acme.com', name => 'F' }, $k,
                  headers => { 'Content-Type' => 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', undef, 'refused with 415');
    error_ok(idem('PUT', 'f1', $key, { email => 'f1@acme.com', name => 'F' }, $k), 405, 'METHOD_NOT_ALLOWED', undef, 'refused with 405');
    error_ok(idem('PATCH', 'f1', $key, { email => 'f1@acme.com', name => 'x' x 70000 }, $k), 413, 'PAYLOAD_TOO_LARGE',
             'body is over the limit of 65536 bytes', 'refused with 413');
    ok(!$R->exists("sd:{acme}:idem:$k"), 'nothing recorded for them');
    my $r = idem('PATCH', 'f1', $key, { email => 'f1@acme.com', name => 'F' }, $k);
    envelope_ok($r, 200, undef, 'fixed, retried with the same key: applied');
    is($r->{json}{data}{wasCreated}, JSON::PP::true, '... created');
    # a refusal from storage is not recorded either: nothing was applied
    $k = 'conflict';
    error_ok(idem('PATCH', 'f2', $key, { email => 'f1@acme.com', name => 'F2' }, $k), 409, 'CUSTOMER_EMAIL_EXISTS', undef, 'refused with 409');
    ok(!$R->exists("sd:{acme}:idem:$k"), 'a 409 records nothing');
}

# ---------------------------------------------------------------- the header's own rules
for my $case ([ 'empty', '' ], [ '256 characters', 'k' x 256 ], [ 'a space', 'a b' ], [ 'a non-ASCII byte', "a\x{e9}" ]) {
    my ($name, $v) = @$case;
    my $r = $env->api('PATCH', 'h1', $key, { email => 'h1@acme.com', name => 'H' }, headers => { 'Idempotency-Key' => $v });
    error_ok($r, 400, 'VALIDATION_ERROR', undef, "Idempotency-Key $name: 400");
    is((SupportDesk::Test::details_of($r))[0]{field}, 'Idempotency-Key', "Idempotency-Key $name: named");
}
{
    my $r = $env->api('PATCH', 'h1', $key, { email => 'h1@acme.com', name => 'H' }, headers => { 'Idempotency-Key' => ['a', 'b'] });
    error_ok($r, 400, 'VALIDATION_ERROR', undef, 'Idempotency-Key twice: 400');
    fields_ok($r, [['Idempotency-Key', 'must be sent once']], 'Idempotency-Key twice');
    my $r2 = $env->api('PATCH', 'h1', $key, { email => 'h1@acme.com', name => 'H' }, headers => { 'Idempotency-Key' => 'k' x 255 });
    envelope_ok($r2, 200, undef, 'a 255-character key is taken');
}

# ---------------------------------------------------------------- per app
{
    my $body = { email => 'shared@x.com', name => 'Shared' };
    my $a = idem('PATCH', 's1', $key, $body, 'same-key');
    my $o = idem('PATCH', 's1', $other, $body, 'same-key');
    envelope_ok($a, 200, undef, 'acme with a key');
    envelope_ok($o, 200, undef, 'other app, the same key');
    ok(!exists $o->{headers}{'idempotent-replayed'}, 'the other app is not answered with acme\'s record');
    is($o->{json}{data}{wasCreated}, JSON::PP::true, 'the other app\'s customer is created');
}

# ---------------------------------------------------------------- concurrent duplicates
{
    my $body = { email => 'race@acme.com', name => 'Race' };
    my $n0 = nevents('acme');
    my @res = $env->parallel([ map { $env->http_bytes('PATCH', '/api/v1/customers/race', headers => { 'X-API-Key' => $key,
                                     'Idempotency-Key' => 'race-key' }, body => $body) } 1 .. 20 ], timeout => 10);
    is(scalar(grep { $_->{status} == 200 } @res), 20, '20 concurrent duplicates: all 200');
    is(scalar(grep { ($_->{headers}{'idempotent-replayed'} // '') ne 'true' } @res), 1, '... one applied, 19 replays');
    is(scalar(grep { $_->{json}{data}{wasCreated} } @res), 20, '... every one answers the create');
    is(nevents('acme') - $n0, 1, '... one event');

    my @items = map { { externalId => "rb$_", email => "rb$_\@acme.com", name => "RB $_" } } 1 .. 300;
    my $bb = { customers => \@items };
    $n0 = nevents('acme');
    @res = $env->parallel([ map { $env->http_bytes('PATCH', '/api/v1/customers', headers => { 'X-API-Key' => $key,
                                  'Idempotency-Key' => 'race-batch' }, body => $bb) } 1 .. 4 ], timeout => 20);
    my @ok = grep { $_->{status} == 200 } @res;
    my @busy = grep { $_->{status} == 409 } @res;
    is(@ok + @busy, 4, 'concurrent batches under one key: each 200 or 409') or diag join ' ', map { $_->{status} } @res;
    diag scalar(@busy) . ' of 4 concurrent batches came while the first was applied (409)';
    error_ok($_, 409, 'IDEMPOTENCY_KEY_IN_USE', undef, 'a duplicate batch while the first is applied') for @busy;
    is(scalar(grep { ($_->{headers}{'idempotent-replayed'} // '') ne 'true' } @ok), 1, '... one applied');
    is_deeply($_->{json}{data}, $ok[0]{json}{data}, '... the others replay its answer') for @ok[1 .. $#ok];
    is(nevents('acme') - $n0, 300, '... its 300 items applied once');
}

# ---------------------------------------------------------------- a batch cut off before its end
{
    my @items = ({ externalId => 'cut1', email => 'cut1@acme.com', name => 'Cut 1' },
                 { externalId => 'cut2', email => 'base@acme.com', name => 'Cut 2 taken' },
                 { externalId => 'cut3', email => 'cut3@acme.com', name => 'Cut 3' });
    my $body = { customers => \@items };
    my $r = idem('PATCH', '/api/v1/customers', $key, $body, 'cut');
    envelope_ok($r, 200, undef, 'a batch');
    # as if the connection had been lost after the items, before the end:
    # only the items' own records are left
    $R->del('sd:{acme}:idem:cut');
    my $n0 = nevents('acme');
    my $again = idem('PATCH', '/api/v1/customers', $key, $body, 'cut');
    envelope_ok($again, 200, undef, 'the same batch again, its end record gone');
    is_deeply($again->{json}{data}, $r->{json}{data}, '... every item answers as before (the creates still say created)');
    is(nevents('acme'), $n0, '... no item applied twice');
    replayed_ok('... and now the whole batch is recorded again', sub { idem('PATCH', '/api/v1/customers', $key, $body, 'cut') }, $r);
}

# ---------------------------------------------------------------- a replay read from its record
# A write under a key reads its record first (one HMGET) and a replay is
# answered from it: no script runs again.  A record whose answer the worker
# cannot read is left to the script, which answers the same.
{
    my $calls = sub {
        my $s = $R->info('commandstats')->{"cmdstat_$_[0]"} // 'calls=0,';
        return ($s =~ /calls=(\d+)/)[0];
    };
    my @replays = (
        [ 'upsert', 'PATCH', 'c1', { name => 'C Uno' }, 'key-upsert--update-', $first{'upsert (update)'} ],
        [ 'note', 'POST', '/api/v1/customers/c1/notes', { note => 'hello' }, 'key-note', $first{'note'} ],
        [ 'notifications', 'PATCH', '/api/v1/customers/c1/notifications', { newTicket => JSON::PP::false },
          'key-notifications', $first{'notifications'} ],
    );
    for my $rp (@replays) {
        my ($name, $m, $p, $body, $k, $first) = @$rp;
        my $before = $env->snapshot;
        my ($ev, $hm) = ($calls->('evalsha'), $calls->('hmget'));
        my $again = idem($m, $p, $key, $body, $k);
        is($calls->('evalsha') - $ev, 0, "$name: the replay ran no script");
        is($calls->('hmget') - $hm, 1, "$name: ... one HMGET of its record");
        same_answer("$name: replayed from the record", $first, $again);
        is($again->{headers}{etag}, $first->{headers}{etag}, "$name: ... the same ETag");
        is_deeply($env->snapshot, $before, "$name: ... nothing changed");
    }

    my $ev = $calls->('evalsha');
    my $body = { email => 'rec@acme.com', name => 'Rec' };
    my $first = idem('PATCH', 'rec1', $key, $body, 'rec-1');
    envelope_ok($first, 200, undef, 'a new key: applied');
    is($calls->('evalsha') - $ev, 1, '... by its script');

    # {1, {...}} as cmsgpack writes it; the 1 rewritten as a double, which
    # cmsgpack reads as the same number and this worker declines
    my $rk = 'sd:{acme}:idem:rec-1';
    my $packed = $R->hget($rk, 'r');
    is(substr($packed, 0, 2), "\x92\x01", 'the record: {wasCreated, customer} in msgpack');
    $R->hset($rk, 'r', "\x92\xcb\x3f\xf0" . ("\0" x 6) . substr($packed, 2));
    my $before = $env->snapshot;
    $ev = $calls->('evalsha');
    my $again = idem('PATCH', 'rec1', $key, $body, 'rec-1');
    same_answer('a record this worker cannot read: replayed by the script', $first, $again);
    is($calls->('evalsha') - $ev, 1, '... which ran');
    is_deeply($env->snapshot, $before, '... and changed nothing');
    like($env->nginx_error_log, qr/\[warn\].*an idempotency record's answer this worker cannot read: left to the script/,
         '... logged');
}

# ---------------------------------------------------------------- a write that timed out, retried
# What the key is for: Redis stalls past supportdesk_redis_timeout (1 s) and
# the note's creation is answered 504.  A write under a key reads its record
# first, so the stall caught that read and the script was never sent: Redis
# resumed has made nothing.  The retry under the same key makes the note,
# once, and a retry of the retry replays it.
{
    envelope_ok($env->api('PATCH', 'slow1', $key, { email => 'slow1@acme.com', name => 'Slow' }), 200, undef,
                'setup slow1');
    my $n0 = nevents('acme');
    my $path = '/api/v1/customers/slow1/notes';
    $env->pause_redis;
    my $r = idem('POST', $path, $key, { note => 'stalled' }, 'stalled-note');
    $env->resume_redis;
    error_ok($r, 504, 'GATEWAY_TIMEOUT', undef, 'a note created while Redis stalls: 504');
    sleep 0.3;
    is($R->zcard('sd:{acme}:notez:slow1'), 0, '... Redis resumed has made no note');
    is($R->exists('sd:{acme}:idem:stalled-note'), 0, '... and recorded nothing under the key');
    is(nevents('acme'), $n0, '... nor emitted anything');
    my $retry = idem('POST', $path, $key, { note => 'stalled' }, 'stalled-note');
    envelope_ok($retry, 201, undef, 'the retry under the same key, Redis back: 201');
    ok(!exists $retry->{headers}{'idempotent-replayed'}, '... applied, not replayed');
    is($retry->{json}{data}{note}{text}, 'stalled', '... the note as sent');
    my $notes = $env->api('GET', $path, $key)->{json}{data}{notes};
    is(scalar @$notes, 1, '... one note');
    is($notes->[0]{id}, $retry->{json}{data}{note}{id}, '... the one the retry answers');
    is(nevents('acme') - $n0, 1, '... and one event');
    replayed_ok('a retry of the retry', sub { idem('POST', $path, $key, { note => 'stalled' }, 'stalled-note') },
                $retry);
}

# ---------------------------------------------------------------- records expire
{
    my $body = { email => 'ttl@acme.com', name => 'TTL' };
    my $r = $env->api('PATCH', '/short/customers/ttl1', $key, $body, headers => { 'Idempotency-Key' => 'ttl' });
    envelope_ok($r, 200, undef, 'under supportdesk_idempotency_ttl 2s');
    my $ttl = $R->ttl('sd:{acme}:idem:ttl');
    ok($ttl >= 1 && $ttl <= 2, "the record lives 2 s ($ttl)");
    $ttl = $R->ttl('sd:{acme}:idem:key-note');
    ok($ttl > 86000 && $ttl <= 86400, "by default 24 h ($ttl)");
    ok(wait_until(sub { !$R->exists('sd:{acme}:idem:ttl') }, 5, 0.1), 'it expires');
    my $again = $env->api('PATCH', '/short/customers/ttl1', $key, $body, headers => { 'Idempotency-Key' => 'ttl' });
    envelope_ok($again, 200, undef, 'the same request after it expired');
    ok(!exists $again->{headers}{'idempotent-replayed'}, '... is applied again, not replayed');
    is($again->{json}{data}{wasCreated}, JSON::PP::false, '... as an update');
}

$env->invariants_ok('acme');
$env->invariants_ok('other');
done_testing;
