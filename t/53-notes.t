# Notes: POST (201, stored as sent, 1-65535 bytes), GET (newest first,
# limit, cursor, text filter, total), DELETE (NOTE_NOT_FOUND), every 400 /
# 401 / 404 / 415, note ids unique within the app and never reused,
# deleting a customer deletes its notes, the Redis layout (notes hash,
# notez zset, noteseq), tenant isolation.
# Configuration: the harness's default, plus location /api/big/ with
# supportdesk_max_body_size 256k (notes at the 65535-byte limit).
use strict;
use warnings;
use utf8;
use Test::More;
use POSIX qw(strftime);
use SupportDesk::Test qw(envelope_ok fields_ok json_encode json_decode pct);

my $env = SupportDesk::Test->new(
    server_conf => 'location /api/big/ { supportdesk; supportdesk_max_body_size 256k; }',
);
my $key   = $env->create_key('acme', 'notes tests');
my $other = $env->create_key('other', 'tenant isolation');
my $R = $env->redis;
my $TS = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
my $r;

sub notes_path { my ($ext, $loc) = @_; '/api/' . ($loc // 'v1') . '/customers/' . $ext . '/notes' }
sub add  { my ($ext, $body, %o) = @_; my $k = exists $o{key} ? delete $o{key} : $key;
           $env->api('POST', notes_path($ext, delete $o{loc}), $k, $body, %o) }
sub list { my ($ext, $q, $k) = @_; $env->api('GET', notes_path($ext) . ($q // ''), $k // $key) }
sub del  { my ($ext, $id, $k) = @_; $env->api('DELETE', notes_path($ext) . '/' . $id, exists $_[2] ? $k : $key) }
sub notes_of { my $x = $_[0]{json}{data}{notes}; ref $x eq 'ARRAY' ? $x : [] }
sub ids { [ map { $_->{id} } @{ $_[0] } ] }
sub num { my $id = shift // ''; $id =~ /^note_(\d+)$/ ? $1 : undef }
sub bytes { my $s = shift; utf8::encode($s); $s }
sub iso { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime shift) }
sub refused { $env->refused(@_) }

for my $c (['n1', $key], ['n2', $key], ['n1', $other], ['o_only', $other]) {
    envelope_ok($env->api('PATCH', $c->[0], $c->[1], { email => "$c->[0]\@example.com", name => "Name $c->[0]" }),
                200, undef, "setup $c->[0]") or BAIL_OUT('setup');
}

# ---------------------------------------------------------------- POST
my %made;    # id -> note object
my @n1;      # ids of n1's notes, oldest first
sub created_ok {
    my ($name, $ext, $text, %o) = @_;
    my $t = time;
    my $res = add($ext, { note => $text }, %o);
    envelope_ok($res, 201, undef, $name) or return;
    my $n = $res->{json}{data}{note} // {};
    like($n->{id} // '', qr/^note_\d+$/, "$name: id note_<n>");
    is($n->{text}, $text, "$name: text as sent");
    like($n->{createdAt} // '', $TS, "$name: createdAt");
    is($n->{updatedAt}, $n->{createdAt}, "$name: updatedAt == createdAt");
    is_deeply([sort keys %$n], [qw(createdAt id text updatedAt)], "$name: exactly id, text, createdAt, updatedAt");
    is_deeply([keys %{ $res->{json}{data} }], ['note'], "$name: data is {note}");
    my $num = num($n->{id});
    if (defined $num) {
        my $v = $R->hget("sd:{acme}:notes:$ext", $num);
        my ($c, $txt) = ($v // '') =~ /^(\d+):(.*)\z/s;
        is($txt, bytes($text), "$name: Redis notes hash holds '<createdAt>:<text>'");
        is(iso($c // 0), $n->{createdAt}, "$name: Redis createdAt is the note's");
        is($R->zscore("sd:{acme}:notez:$ext", $num), $num, "$name: Redis notez member scored by its number");
        is($R->get('sd:{acme}:noteseq'), $num, "$name: noteseq is the new note's number");
    }
    $made{ $n->{id} } = $n;
    push @n1, $n->{id} if $ext eq 'n1';
    return $n;
}
created_ok('HTML note', 'n1', 'First <b>note</b> & "quotes" <script>alert(1)</script>');
created_ok('unicode note', 'n1', 'Ünïcode 😀 note');
created_ok('colons and new lines', 'n1', "12:34:56\nline two\r\n\ttab: end");
created_ok('a single space, stored as sent', 'n1', ' ');
created_ok('leading and trailing space kept', 'n1', '  padded NOTE  ');
created_ok("note $_", 'n1', "plain note $_") for 1 .. 4;
created_ok("n2 note $_", 'n2', "n2 note $_") for 1 .. 2;
my @all = map { num($_) } keys %made;
my %u; $u{$_}++ for @all;
is(scalar(keys %u), scalar(@all), 'note ids unique within the app');
my @n1nums = map { num($_) } @n1;
is_deeply(\@n1nums, [sort { $a <=> $b } @n1nums], 'note numbers grow');

# sizes (location with supportdesk_max_body_size 256k)
created_ok('note of 65535 bytes', 'n2', 'x' x 65535, loc => 'big');
created_ok('note of 32767 two-byte characters (65534 bytes)', 'n2', 'é' x 32767, loc => 'big');
my $LEN = [note => 'must be 1-65535 bytes'];
refused('note of 65536 bytes', 400, 'VALIDATION_ERROR', sub { add('n2', { note => 'x' x 65536 }, loc => 'big') }, $LEN);
refused('note of 32768 two-byte characters (65536 bytes)', 400, 'VALIDATION_ERROR',
        sub { add('n2', { note => 'é' x 32768 }, loc => 'big') }, $LEN);

# errors
my $STR = [note => 'must be a string'];
refused('empty note', 400, 'VALIDATION_ERROR', sub { add('n1', { note => '' }) }, $LEN);
refused('no note', 400, 'VALIDATION_ERROR', sub { add('n1', {}) }, [note => 'is required']);
refused('note null', 400, 'VALIDATION_ERROR', sub { add('n1', { note => undef }) }, $STR);
refused('note a number', 400, 'VALIDATION_ERROR', sub { add('n1', { note => 5 }) }, $STR);
refused('note an array', 400, 'VALIDATION_ERROR', sub { add('n1', { note => ['x'] }) }, $STR);
refused('note an object', 400, 'VALIDATION_ERROR', sub { add('n1', { note => { text => 'x' } }) }, $STR);
refused('other key', 400, 'VALIDATION_ERROR', sub { add('n1', { note => 'x', pinned => JSON::PP::true }) },
        [pinned => 'is not a known field']);
refused('text instead of note', 400, 'VALIDATION_ERROR', sub { add('n1', { text => 'x' }) },
        [text => 'is not a known field'], [note => 'is required'], { ordered => 1 });
refused('read-only id', 400, 'VALIDATION_ERROR', sub { add('n1', { note => 'x', id => 'note_1' }) },
        [id => 'is not a known field']);
refused('malformed JSON', 400, 'INVALID_JSON', sub { add('n1', '{"note":') }, { message => 'body is not valid JSON' });
refused('array body', 400, 'INVALID_JSON', sub { add('n1', '["x"]') }, { message => 'body must be a JSON object' });
refused('\u0000 in the note', 400, 'INVALID_JSON', sub { add('n1', '{"note":"a\u0000b"}') },
        { message => 'body must not contain \\u0000' });
refused('invalid UTF-8', 400, 'INVALID_JSON', sub { add('n1', qq({"note":"a\xff"})) }, { message => 'body is not valid UTF-8' });
refused('text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE', sub { add('n1', { note => 'x' }, headers => { 'Content-Type' => 'text/plain' }) });
refused('no key', 401, 'UNAUTHORIZED', sub { add('n1', { note => 'x' }, key => undef) });
refused('unknown key', 401, 'UNAUTHORIZED', sub { add('n1', { note => 'x' }, key => 'sdk_nope') });
refused('unknown customer', 404, 'CUSTOMER_NOT_FOUND', sub { add('nobody', { note => 'x' }) });
refused('unknown customer, bad body: 400 first', 400, 'VALIDATION_ERROR', sub { add('nobody', { note => '' }) }, $LEN);
refused('externalId with %2F', 400, 'VALIDATION_ERROR', sub { add('a%2Fb', { note => 'x' }) },
        [externalId => "must not contain '/'"]);
refused('body over 64k', 413, 'PAYLOAD_TOO_LARGE', sub { add('n1', json_encode({ note => 'x' }) . (' ' x 65536)) },
        { message => 'body is over the limit of 65536 bytes' });

# ---------------------------------------------------------------- GET
my $snap = $env->snapshot;
my @newest = reverse @n1;
$r = list('n1');
envelope_ok($r, 200, undef, 'list n1');
is_deeply(ids(notes_of($r)), \@newest, 'newest first');
is_deeply(notes_of($r), [map { $made{$_} } @newest], 'the notes as created');
is($r->{json}{data}{total}, scalar @n1, 'total');
ok(exists $r->{json}{data}{nextCursor} && !defined $r->{json}{data}{nextCursor}, 'nextCursor null');
is_deeply([sort keys %{ $r->{json}{data} }], [qw(nextCursor notes total)], 'data has notes, nextCursor, total');

$r = list('n1', '?limit=3');
is_deeply(ids(notes_of($r)), [@newest[0 .. 2]], 'limit=3: the 3 newest');
ok(defined $r->{json}{data}{nextCursor}, 'limit=3: a cursor');
my ($items, $pages) = $env->follow_pages(notes_path('n1') . '?limit=3', $key, field => 'notes');
is_deeply(ids($items), \@newest, 'following the cursor: every note once, newest first');
is(scalar @$pages, 3, '3 pages');
($items) = $env->follow_pages(notes_path('n1') . '?limit=1', $key, field => 'notes');
is_deeply(ids($items), \@newest, 'limit=1 walk');

my @plain = grep { $made{$_}{text} =~ /note/i } @newest;
$r = list('n1', '?text=NOTE');
is_deeply(ids(notes_of($r)), \@plain, 'text filter, case-insensitive');
is($r->{json}{data}{total}, scalar @n1, 'total ignores the filter');
($items) = $env->follow_pages(notes_path('n1') . '?text=note&limit=2', $key, field => 'notes');
is_deeply(ids($items), \@plain, 'text filter with pagination');
$r = list('n1', '?text=' . pct('<b>'));
is_deeply(ids(notes_of($r)), [$n1[0]], 'text filter on HTML, percent-decoded');
$r = list('n1', '?text=' . pct('😀'));
is_deeply(ids(notes_of($r)), [$n1[1]], 'text filter on UTF-8');
$r = list('n1', '?text=line+two');
is_deeply(ids(notes_of($r)), [$n1[2]], 'text filter: + is a space');
$r = list('n1', '?text=nothing-like-this');
is_deeply(notes_of($r), [], 'text filter matching nothing');
$r = list('n1', '?limit=100');
is(scalar @{ notes_of($r) }, scalar @n1, 'limit=100');

for my $bad ('0', '101', 'abc', '-3') {
    refused("limit=$bad", 400, 'VALIDATION_ERROR', sub { list('n1', "?limit=$bad") },
            [limit => 'must be an integer from 1 to 100']);
}
refused('bad cursor', 400, 'VALIDATION_ERROR', sub { list('n1', '?cursor=zzz') },
        [cursor => 'is not a cursor this API issued']);
refused('unknown parameter', 400, 'VALIDATION_ERROR', sub { list('n1', '?foo=1') }, [foo => 'is not a known parameter']);
refused('email is not a notes filter', 400, 'VALIDATION_ERROR', sub { list('n1', '?email=x') },
        [email => 'is not a known parameter']);
refused('GET notes of an unknown customer', 404, 'CUSTOMER_NOT_FOUND', sub { list('nobody') });
refused('GET notes without a key', 401, 'UNAUTHORIZED', sub { $env->request('GET', notes_path('n1')) });
refused('GET notes with an unknown key', 401, 'UNAUTHORIZED', sub { list('n1', '', 'sdk_nope') });
is_deeply($env->snapshot, $snap, 'listing notes changed nothing');

# ---------------------------------------------------------------- DELETE
my $victim = $n1[5];
my $seq = $R->get('sd:{acme}:noteseq');
$r = del('n1', $victim);
envelope_ok($r, 200, undef, 'DELETE a note');
is_deeply($r->{json}{data}, { deleted => JSON::PP::true }, 'data is {"deleted":true}');
ok(!$R->hexists('sd:{acme}:notes:n1', num($victim)), 'Redis: gone from the notes hash');
ok(!defined $R->zscore('sd:{acme}:notez:n1', num($victim)), 'Redis: gone from notez');
is($R->get('sd:{acme}:noteseq'), $seq, 'Redis: noteseq unchanged');
@n1 = grep { $_ ne $victim } @n1;
$r = list('n1', '?limit=100');
is_deeply(ids(notes_of($r)), [reverse @n1], 'the list no longer has it');
is($r->{json}{data}{total}, scalar @n1, 'total went down');

refused('DELETE it again', 404, 'NOTE_NOT_FOUND', sub { del('n1', $victim) });
my ($n2note) = grep { $made{$_}{text} eq 'n2 note 1' } keys %made;
refused("DELETE n2's note through n1", 404, 'NOTE_NOT_FOUND', sub { del('n1', $n2note) });
ok($R->hexists('sd:{acme}:notes:n2', num($n2note)), "n2's note still there");
refused('DELETE note_999999', 404, 'NOTE_NOT_FOUND', sub { del('n1', 'note_999999') });
# an id the API did not issue names no note (ngx_http_supportdesk_parse_id)
refused('DELETE a malformed note id', 404, 'NOTE_NOT_FOUND', sub { del('n1', 'bogus') });
refused('DELETE note_0', 404, 'NOTE_NOT_FOUND', sub { del('n1', 'note_0') });
refused('DELETE a note of an unknown customer', 404, 'CUSTOMER_NOT_FOUND', sub { del('nobody', $n1[0]) });
refused('DELETE a note without a key', 401, 'UNAUTHORIZED', sub { del('n1', $n1[0], undef) });
refused('DELETE a note with an unknown key', 401, 'UNAUTHORIZED', sub { del('n1', $n1[0], 'sdk_nope') });

# every note of n2 deleted: its keys go away
my @n2ids = sort grep { $made{$_} && $R->hexists('sd:{acme}:notes:n2', num($_)) } keys %made;
is(scalar @n2ids, 4, 'n2 has its 4 notes (2 plain, 2 at the size limit)');
for my $id (@n2ids) {
    envelope_ok(del('n2', $id), 200, undef, "DELETE n2 $id");
}
ok(!$R->exists('sd:{acme}:notes:n2') && !$R->exists('sd:{acme}:notez:n2'), 'Redis: no notes keys for n2 once empty');
$r = list('n2');
envelope_ok($r, 200, undef, 'n2 without notes');
is_deeply(notes_of($r), [], 'no notes');
is($r->{json}{data}{total}, 0, 'total 0');
my $max = (sort { $b <=> $a } map { num($_) } keys %made)[0];
my $fresh = created_ok('a new note after deletions', 'n2', 'fresh');
cmp_ok(num($fresh->{id}), '>', $max, 'note ids are never reused');
$env->invariants_ok('acme');

# ---------------------------------------------------------------- tenant isolation
{
    my $acme_before = $env->snapshot('sd:{acme}:*');
    $r = add('n1', { note => 'other app note' }, key => $other);
    envelope_ok($r, 201, undef, "the other app notes its own n1");
    my $oid = $r->{json}{data}{note}{id};
    $r = list('n1', '', $other);
    is_deeply([map { $_->{text} } @{ notes_of($r) }], ['other app note'], "the other app sees only its own n1's notes");
    is($r->{json}{data}{total}, 1, 'other: total 1');
    # note numbers are per app: the other app's first note may have the
    # number of one of acme's, so take an acme id the other app has not
    my ($foreign) = grep { $_ ne ($oid // '') } @n1;
    ok(defined $foreign, "an acme note id the other app's n1 does not have");
    refused("other key DELETEs acme's note id on its own n1", 404, 'NOTE_NOT_FOUND',
            sub { del('n1', $foreign, $other) });
    refused('other key POSTs to an acme-only customer', 404, 'CUSTOMER_NOT_FOUND', sub { add('n2', { note => 'x' }, key => $other) });
    refused('other key lists notes of an acme-only customer', 404, 'CUSTOMER_NOT_FOUND', sub { list('n2', '', $other) });
    refused('other key DELETEs a note of an acme-only customer', 404, 'CUSTOMER_NOT_FOUND', sub { del('n2', $fresh->{id}, $other) });
    is_deeply($env->snapshot('sd:{acme}:*'), $acme_before, "acme's keys unchanged by the other app");
    $r = list('n1', '?limit=100');
    is_deeply(ids(notes_of($r)), [reverse @n1], "acme's n1 notes unchanged");
}

# ---------------------------------------------------------------- notesCount
$r = $env->api('GET', '/api/v1/customers?include=notesCount', $key);
envelope_ok($r, 200, undef, 'list customers with notesCount');
is_deeply({ map { $_->{externalId} => $_->{notesCount} } @{ $r->{json}{data}{customers} || [] } },
          { n1 => scalar @n1, n2 => 1 }, 'notesCount follows adds and deletes');

# ---------------------------------------------------------------- deleting the customer
envelope_ok($env->api('PATCH', '/api/v1/customers/n1/notifications', $key, { newTicket => JSON::PP::false }),
            200, undef, 'n1 notification settings');
{
    my $other_before = $env->snapshot('sd:{other}:*');
    $r = $env->api('DELETE', 'n1', $key);
    envelope_ok($r, 200, undef, 'DELETE customer n1');
    ok(!$R->exists("sd:{acme}:$_:n1"), "Redis: sd:{acme}:$_:n1 deleted with the customer") for qw(notes notez notif);
    is_deeply($env->snapshot('sd:{other}:*'), $other_before, "the other app's n1 and its notes untouched");
    refused('notes of the deleted customer', 404, 'CUSTOMER_NOT_FOUND', sub { list('n1') });
    refused('POST a note to the deleted customer', 404, 'CUSTOMER_NOT_FOUND', sub { add('n1', { note => 'x' }) });
    refused('DELETE a note of the deleted customer', 404, 'CUSTOMER_NOT_FOUND', sub { del('n1', $n1[0]) });
    envelope_ok($env->api('PATCH', 'n1', $key, { email => 'n1@example.com', name => 'Reborn' }), 200, undef, 'n1 created again');
    $r = list('n1');
    is_deeply(notes_of($r), [], 'the new n1 has no notes');
    is($r->{json}{data}{total}, 0, '... total 0');
    my $again = created_ok('a note on the new n1', 'n1', 'again');
    cmp_ok(num($again->{id}), '>', num($fresh->{id}), 'its id is new');
}

$env->invariants_ok($_) for qw(acme other);
done_testing;
