# GET /events, the change feed: one event per committed change, in order,
# per app; nothing for a failed request; paging and cursors (400, 410);
# retention by count and by age; the long poll (delivery, time-out, a client
# that leaves, a reload); the stream's fields for direct consumers.
# Configuration: the harness's default with 2 workers; for retention a
# second environment with supportdesk_events_max_count 10 and
# supportdesk_events_max_age 2s, and Redis's stream-node-max-entries 4 so
# that trimming (a stream node at a time) shows on a small feed.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok error_ok fields_ok json_decode wait_until);

my $env = SupportDesk::Test->new(worker_processes => 2);
my $key = $env->create_key('acme');
my $other = $env->create_key('other');
my $R = $env->redis;

sub events {
    my ($q, $k) = @_;
    my $r = $env->api('GET', '/api/v1/events' . ($q // ''), $k // $key, undef, timeout => 40);
    return $r;
}

sub all_events {
    my ($k) = @_;
    my $r = events('?limit=1000', $k);
    envelope_ok($r, 200, undef, 'GET /events') or return [];
    return $r->{json}{data}{events};
}

sub types { [ map { "$_->{type} $_->{externalId}" } @{ $_[0] } ] }

# ---------------------------------------------------------------- an empty feed
my $r = events();
envelope_ok($r, 200, undef, 'empty feed');
is_deeply($r->{json}{data}, { events => [], nextCursor => '0-0' },
          'empty feed: no events, the cursor of a feed without any');
$r = events('?after=0-0');
is_deeply($r->{json}{data}, { events => [], nextCursor => '0-0' }, 'after=0-0 on an empty feed');

# ---------------------------------------------------------------- every change, in order
envelope_ok($env->api('PATCH', 'e1', $key, { email => 'e1@acme.com', name => 'E One', phone => '1' }), 200, undef, 'create e1');
envelope_ok($env->api('PATCH', 'e1', $key, { name => 'E Uno', phone => undef }), 200, undef, 'update e1');
envelope_ok($env->api('PATCH', 'e1', $key, { name => 'E Uno' }), 200, undef, 'update e1 that changes nothing');
$r = $env->api('POST', '/api/v1/customers/e1/notes', $key, { note => 'first <b>note</b>' });
envelope_ok($r, 201, undef, 'a note');
my $note = $r->{json}{data}{note};
envelope_ok($env->api('DELETE', "/api/v1/customers/e1/notes/$note->{id}", $key), 200, undef, 'delete the note');
envelope_ok($env->api('PATCH', '/api/v1/customers/e1/notifications', $key, { newComment => JSON::PP::false }), 200, undef, 'notifications');
envelope_ok($env->api('PATCH', '/api/v1/customers/e1/notifications', $key, { newComment => JSON::PP::false }), 200, undef,
            'notifications that change nothing');
$r = $env->api('PATCH', '/api/v1/customers', $key, { customers => [
    { externalId => 'b1', email => 'b1@acme.com', name => 'B1' },
    { externalId => 'b2', email => 'e1@acme.com', name => 'B2 takes e1' },     # 409
    { externalId => 'b3', email => 'not an email', name => 'B3' },             # 400
    { externalId => 'e1', name => 'E Batch' },
] });
envelope_ok($r, 200, undef, 'a batch');
is_deeply([ map { $_->{success} ? 1 : 0 } @{ $r->{json}{data}{results} } ], [1, 0, 0, 1], 'batch: two items succeed');

# failed requests emit nothing
my $before = $R->hget('sd:{acme}:eventseq', 'n');
error_ok($env->api('PATCH', 'e2', $key, { email => 'E1@acme.com', name => 'Dup' }), 409, 'CUSTOMER_EMAIL_EXISTS', undef, 'a 409');
error_ok($env->api('DELETE', '/api/v1/customers/e1/notes/note_99', $key), 404, 'NOTE_NOT_FOUND', undef, 'a 404');
error_ok($env->api('PATCH', 'e3', $key, { phone => '5' }), 400, 'VALIDATION_ERROR', undef, 'create without email and name');
error_ok($env->api('DELETE', 'nobody', $key), 404, 'CUSTOMER_NOT_FOUND', undef, 'delete a customer that is not there');
is($R->hget('sd:{acme}:eventseq', 'n'), $before, 'failed requests add no event');

my $job = $env->api('POST', '/api/v1/customers/bulk-update', $key,
                    { filter => { externalId => ['b1', 'e1'] }, set => { phone => '777' } })->{json}{data}{jobId};
ok(wait_until(sub { ($env->api('GET', "/api/v1/jobs/$job", $key)->{json}{data}{job}{status} // '') eq 'done' }, 20, 0.1),
   'the bulk-update job is done');
envelope_ok($env->api('DELETE', 'b1', $key), 200, undef, 'delete b1');

my $ev = all_events();
is_deeply(types($ev), [
    'customer.created e1', 'customer.updated e1', 'note.created e1', 'note.deleted e1',
    'notifications.updated e1', 'customer.created b1', 'customer.updated e1',
    'customer.updated b1', 'customer.updated e1', 'customer.deleted b1',
], 'one event per change, in the order of the changes (none for a change that changed nothing, none for a failure, one per matching customer the job changed, in the order of its externalId filter)');

my @ids = map { $_->{id} } @$ev;
my @n = map { /^\d+-(\d+)$/ ? $1 : -1 } @ids;
is_deeply(\@n, [1 .. @ids], 'ids are <ms>-<n>, n counting the app\'s events');
for my $e (@$ev) {
    like($e->{at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, "$e->{id}: at is a timestamp");
    is_deeply([sort keys %$e], [qw(at data externalId id type)], "$e->{id}: the event's members");
}
my $get = $env->api('GET', 'e1', $key)->{json}{data}{customer};
is_deeply($ev->[0]{data}, { customer => { %{ $ev->[0]{data}{customer} } } }, 'customer.created: data is {customer}');
is($ev->[0]{data}{customer}{phone}, '1', 'customer.created: the customer as created');
is($ev->[0]{data}{customer}{updatedAt}, $ev->[0]{data}{customer}{createdAt},
   'customer.created: updatedAt is createdAt');
is_deeply($ev->[1]{data}{changed}, ['name', 'phone'], 'customer.updated: changed lists the fields the update changed');
ok(!exists $ev->[1]{data}{customer}{phone}, 'customer.updated: the customer after the change (phone cleared)');
is($ev->[1]{data}{customer}{name}, 'E Uno', '... its new name');
is_deeply($ev->[2]{data}, { note => $note }, 'note.created: data is the note as answered');
is_deeply($ev->[3]{data}, { noteId => $note->{id} }, 'note.deleted: data is the note id');
is_deeply($ev->[4]{data}, { notifications => { newTicket => JSON::PP::true, newComment => JSON::PP::false,
                                               ticketReassigned => JSON::PP::true } },
          'notifications.updated: every setting after the change');
is_deeply($ev->[6]{data}{changed}, ['name'], 'a batch item that updates: its changed fields');
is_deeply($ev->[8]{data}{changed}, ['phone'], 'a bulk-update change: its changed fields');
is($ev->[8]{data}{customer}{phone}, '777', '... and the customer after it');
is_deeply($ev->[9]{data}, {}, 'customer.deleted: data is {}');
is_deeply($ev->[8]{data}{customer}, $get, 'the last event of e1 holds e1 as GET shows it');

# ---------------------------------------------------------------- per app
is_deeply(all_events($other), [], 'another app sees none of these events');
envelope_ok($env->api('PATCH', 'e1', $other, { email => 'e1@other.com', name => 'Other E1' }), 200, undef, 'other app: create e1');
is_deeply(types(all_events($other)), ['customer.created e1'], 'other app: only its own event');
is(scalar @{ all_events() }, 10, 'acme: still its own ten');

# ---------------------------------------------------------------- paging
$r = events('?limit=4');
is_deeply([ map { $_->{id} } @{ $r->{json}{data}{events} } ], [@ids[0 .. 3]], 'limit=4: the four oldest');
is($r->{json}{data}{nextCursor}, $ids[3], 'nextCursor: the last event returned');
$r = events("?after=$ids[3]&limit=4");
is_deeply([ map { $_->{id} } @{ $r->{json}{data}{events} } ], [@ids[4 .. 7]], 'after the cursor: the next four');
$r = events("?after=$ids[7]&limit=4");
is_deeply([ map { $_->{id} } @{ $r->{json}{data}{events} } ], [@ids[8, 9]], '... then the last two');
$r = events("?after=$ids[9]");
is_deeply($r->{json}{data}, { events => [], nextCursor => $ids[9] }, 'at the end: none, the cursor sent back');
$r = events('?limit=1000');
is(scalar @{ $r->{json}{data}{events} }, 10, 'limit=1000 takes all');

for my $bad ('after=abc', 'after=12', 'after=1-', 'after=-1', 'after=1-2-3', 'after=' . ('9' x 20) . '-1') {
    $r = events("?$bad");
    error_ok($r, 400, 'VALIDATION_ERROR', undef, "$bad: 400");
    fields_ok($r, [['after', 'is not an event id']], $bad);
}
for my $bad (0, 1001, 'x') {
    $r = events("?limit=$bad");
    error_ok($r, 400, 'VALIDATION_ERROR', undef, "limit=$bad: 400");
    fields_ok($r, [['limit', 'must be an integer from 1 to 1000']], "limit=$bad");
}
for my $bad (-1, 31, 'x') {
    $r = events("?wait=$bad");
    fields_ok($r, [['wait', 'must be an integer from 0 to 30']], "wait=$bad");
}
$r = events('?since=1');
fields_ok($r, [['since', 'is not a known parameter']], 'an unknown parameter');
my ($ms1) = $ids[0] =~ /^(\d+)-/;
$r = events('?after=' . ($ms1 - 5) . '-1');
error_ok($r, 400, 'VALIDATION_ERROR', 'after is not an event of this feed', 'a cursor naming an event number with another time');
$r = events('?after=' . $ms1 . '-99');
error_ok($r, 410, 'CURSOR_EXPIRED', undef, 'a cursor ahead of the feed: 410');
$r = $env->request('GET', '/api/v1/events');
error_ok($r, 401, 'UNAUTHORIZED', undef, 'no key: 401');
$r = $env->api('POST', '/api/v1/events', $key, {});
error_ok($r, 405, 'METHOD_NOT_ALLOWED', undef, 'POST /events: 405');
is($r->{headers}{allow}, 'GET, HEAD', '... Allow: GET, HEAD');

# ---------------------------------------------------------------- the stream, for direct consumers
my $raw = $R->xrange('sd:{acme}:events', '-', '+');
is(scalar @$raw, 10, 'the stream holds the ten events');
is($raw->[0][0], $ids[0], 'stream ids are the API ids');
my %f0 = @{ $raw->[0][1] };
is($f0{t}, 'customer.created', 'field t: the type');
is($f0{x}, 'e1', 'field x: the externalId');
is($f0{e}, 'e1@acme.com', 'the customer fields, as the customer hash has them');
ok(defined $f0{u} && $f0{u} eq ($f0{c} // ''), 'field u of a customer.created: c (README: u always)');
my %f1 = @{ $raw->[1][1] };
is($f1{ch}, 'name,phone', 'field ch: the changed fields');
is($R->hget('sd:{acme}:eventseq', 'n'), 10, 'sd:{acme}:eventseq n counts the events');

# ---------------------------------------------------------------- long poll
# runs $code in a child process after $delay seconds (no tests there)
sub later {
    my ($delay, $code) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        sleep $delay;
        $code->();
        POSIX::_exit(0);
    }
    return $pid;
}

{
    my $last = $ids[-1];
    my $t0 = time;
    $r = events("?after=$last&wait=1");
    my $dt = time - $t0;
    is_deeply($r->{json}{data}, { events => [], nextCursor => $last }, 'wait=1 and no event: none, the cursor sent back');
    cmp_ok($dt, '>=', 0.9, 'wait=1: held about a second') or diag "answered after ${dt}s";
}

my $last = $ids[-1];
for my $round (1 .. 3) {
    # a poll that waits gets the event made while it waits
    my $t0 = time;
    my $pid = later(0.5, sub { $env->api('PATCH', 'lp', $key, { email => 'lp@acme.com', name => "Long Poll $round" }) });
    $r = events("?after=$last&wait=10");
    my $t1 = time;
    waitpid $pid, 0;
    envelope_ok($r, 200, undef, "long poll $round: answered");
    my $got = $r->{json}{data}{events};
    is_deeply(types($got), [ $round == 1 ? 'customer.created lp' : 'customer.updated lp' ],
              "long poll $round: the event made while it waited");
    my $latency = $t1 - $t0 - 0.5;
    diag sprintf 'long poll %d: answered %.3f s after the write was sent', $round, $latency;
    # the write's own round trip is in there too; without the worker's
    # tick the answer would come after the whole wait
    cmp_ok($latency, '<', 1.5, "long poll $round: answered long before the wait ran out");
    $last = $r->{json}{data}{nextCursor};
}

{
    # many waiters of one app cost one short read per worker tick, not one
    # per waiter
    my $stats = sub { my ($c) = $R->info('commandstats')->{cmdstat_evalsha} =~ /calls=(\d+)/; $c // 0 };
    my $c0 = $stats->();
    my $t0 = time;
    my @res = $env->parallel([ map { $env->http_bytes('GET', "/api/v1/events?after=$last&wait=2",
                                                      headers => { 'X-API-Key' => $key }) } 1 .. 40 ],
                             timeout => 10);
    my $dt = time - $t0;
    my $calls = $stats->() - $c0;
    is(scalar(grep { $_->{status} == 200 && !@{ $_->{json}{data}{events} } } @res), 40,
       '40 waiting polls: each answered, empty, when the wait ran out');
    # 40 first reads, then per tick (100 ms) and worker at most one read;
    # besides, each worker's job runner looks for work every 500 ms
    my $bound = 40 + 2 * (int($dt * 10) + 2) + 2 * (int($dt * 2) + 2);
    cmp_ok($calls, '<=', $bound, "40 waiters for 2 s: $calls scripts run in Redis (at most $bound)");
}

{
    # a client that leaves while its poll waits: nothing breaks
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->port, Proto => 'tcp') or die;
    print $s $env->http_bytes('GET', "/api/v1/events?after=$last&wait=5", headers => { 'X-API-Key' => $key });
    sleep 0.3;
    close $s;
    sleep 0.2;
    envelope_ok($env->api('PATCH', 'lp', $key, { name => 'After a client left' }), 200, undef,
                'a write after a waiting client left');
    $r = events("?after=$last");
    is_deeply(types($r->{json}{data}{events}), ['customer.updated lp'], '... its event is in the feed');
    $last = $r->{json}{data}{nextCursor};
}

SKIP: {
    # with master_process off (the valgrind run) a reload rebuilds the one
    # process in place: no worker exits, so nothing ends the polls early
    skip 'a reload has no old workers to exit with master_process off', 2
        if ($ENV{SD_MASTER_PROCESS} // 'on') eq 'off';
    # a reload answers the waiting polls of the old workers at once
    my $t0 = time;
    my $pid = later(0.7, sub { $env->reload_nginx });
    my @res = $env->parallel([ map { $env->http_bytes('GET', "/api/v1/events?after=$last&wait=20",
                                                      headers => { 'X-API-Key' => $key }) } 1 .. 4 ],
                             timeout => 25);
    my $dt = time - $t0;
    waitpid $pid, 0;
    is(scalar(grep { $_->{status} == 200 } @res), 4, 'reload: the waiting polls are answered')
        or diag join ' ', map { $_->{status} } @res;
    cmp_ok($dt, '<', 10, 'reload: ... at once, not when their wait runs out') or diag "after ${dt}s";
    wait_until(sub { $env->api('GET', 'lp', $key)->{status} == 200 }, 10);
}

$env->invariants_ok('acme');
$env->invariants_ok('other');

# ---------------------------------------------------------------- retention
{
    my $small = SupportDesk::Test->new(
        http_conf => 'supportdesk_events_max_count 10; supportdesk_events_max_age 2s;',
        redis_args => ['--stream-node-max-entries', '4'],
    );
    my $k = $small->create_key('acme');
    my @seen;
    for my $i (1 .. 40) {
        envelope_ok($small->api('PATCH', 'r1', $k, { email => 'r1@acme.com', name => "Name $i" }), 200, undef, "write $i")
            or last;
        my $page = $small->api('GET', '/api/v1/events' . (@seen ? "?after=$seen[-1]" : ''), $k);
        push @seen, map { $_->{id} } @{ $page->{json}{data}{events} || [] };
    }
    is(scalar @seen, 40, '40 events, read as they came');
    my $len = $small->redis->xlen('sd:{acme}:events');
    cmp_ok($len, '>=', 10, "the feed keeps at least its 10 ($len)");
    cmp_ok($len, '<=', 14, "... and trims the rest, a stream node at a time ($len)");
    my $first = $small->redis->xrange('sd:{acme}:events', '-', '+', 'COUNT', 1)->[0][0];
    my ($fn) = $first =~ /-(\d+)$/;
    is($first, $seen[$fn - 1], 'the oldest retained event is one the client saw');
    my $e = $small->api('GET', "/api/v1/events?after=$seen[0]", $k);
    error_ok($e, 410, 'CURSOR_EXPIRED', undef, 'a cursor whose next events were trimmed: 410');
    $e = $small->api('GET', "/api/v1/events?after=$seen[$fn - 2]", $k);
    envelope_ok($e, 200, undef, 'the cursor right before the oldest retained event: nothing was lost');
    is($e->{json}{data}{events}[0]{id}, $first, '... it reads on from the oldest retained');
    $e = $small->api('GET', '/api/v1/events', $k);
    is($e->{json}{data}{events}[0]{id}, $first, 'without a cursor: from the oldest retained');

    # by age: what is older than 2 s goes with the next event
    sleep 2.3;
    envelope_ok($small->api('PATCH', 'r1', $k, { name => 'Later' }), 200, undef, 'a write after 2 s');
    my $after = $small->redis->xrange('sd:{acme}:events', '-', '+');
    cmp_ok(scalar @$after, '<=', 4, 'events older than the age bound are trimmed (' . scalar(@$after) . ' left)');
    is($after->[-1][1][ 3 ], 'r1', '... the new one is there');
    $e = $small->api('GET', "/api/v1/events?after=$seen[-2]", $k);
    error_ok($e, 410, 'CURSOR_EXPIRED', undef, 'a cursor of the aged-out events: 410');
    $e = $small->api('GET', "/api/v1/events?after=$seen[-1]", $k);
    envelope_ok($e, 200, undef, 'the newest aged-out event as cursor: the next one follows it');
    is(scalar @{ $e->{json}{data}{events} }, 1, '... and is returned');
    $small->invariants_ok('acme');
}

done_testing;
