# GET /customers: creation order, limit, cursor, filters (email, name,
# metadata.<key>), include=notesCount, total, every 400, 401, the scan bound
# (supportdesk_list_scan_limit: short and empty pages with a cursor in a big
# app), tenant isolation, and pagination while another process creates and
# deletes customers. Listing never changes Redis.
# Configuration: the harness's default, plus locations /api/s10/, /api/s20/
# and /api/s100/ with supportdesk_list_scan_limit 10, 20 and 100.
use strict;
use warnings;
use utf8;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use SupportDesk::Test qw(envelope_ok fields_ok json_encode json_decode pct);

my $env = SupportDesk::Test->new(
    server_conf => join("\n",
        'location /api/s10/  { supportdesk; supportdesk_list_scan_limit 10; }',
        'location /api/s20/  { supportdesk; supportdesk_list_scan_limit 20; }',
        'location /api/s100/ { supportdesk; supportdesk_list_scan_limit 100; }'),
);
my $key   = $env->create_key('acme', 'list tests');
my $other = $env->create_key('other', 'tenant isolation');
my $R = $env->redis;
my $r;

sub list { my ($q, $k, $loc) = @_; $env->api('GET', '/api/' . ($loc // 'v1') . '/customers' . ($q // ''), $k // $key) }
sub data { $_[0]{json}{data} // {} }
sub ids_of { [ map { $_->{externalId} } @{ $_[0] } ] }
sub page_ids { ids_of(data($_[0])->{customers} || []) }
sub refused { $env->refused(@_) }
sub cursor_null {
    my ($res, $name) = @_;
    my $d = data($res);
    ok(exists $d->{nextCursor} && !defined $d->{nextCursor}, "$name: nextCursor is null")
        or diag 'nextCursor: ' . ($d->{nextCursor} // '<missing>');
}
sub cursor_set {
    my ($res, $name) = @_;
    my $c = data($res)->{nextCursor};
    ok(defined $c && !ref $c && length $c, "$name: nextCursor is a non-empty string")
        or diag 'body: ' . substr($res->{body}, 0, 500);
}
sub follow {
    my ($q, %o) = @_;
    my $k = delete $o{key} // $key;
    my $loc = delete $o{loc} // 'v1';
    return $env->follow_pages("/api/$loc/customers" . ($q // ''), $k, %o);
}
sub all_200 {
    my ($pages, $name) = @_;
    my @bad = grep { $_->{status} != 200 } @$pages;
    ok(!@bad, "$name: every page is 200 (" . scalar(@$pages) . ' pages)')
        or diag "$bad[0]{status} $bad[0]{body}";
}
sub seqno { my $id = shift // ''; $id =~ /(\d+)$/ ? $1 : -1 }

# ---------------------------------------------------------------- empty app
$r = list();
envelope_ok($r, 200, undef, 'empty app');
is_deeply(data($r)->{customers}, [], 'empty app: no customers');
is(data($r)->{total}, 0, 'empty app: total 0');
cursor_null($r, 'empty app');
is_deeply([sort keys %{ data($r) }], [qw(customers nextCursor total)], 'data has customers, nextCursor, total');

# ---------------------------------------------------------------- fixtures
my @fix = (
    ['zeta',     { email => 'Zeta@Acme.com',    name => 'Zeta Jones',  metadata => { plan => 'pro',  seats => 5,   active => JSON::PP::true } }],
    ['alpha',    { email => 'alpha@beta.io',    name => 'Alpha Smith', metadata => { plan => 'free', seats => '5', active => 'true' }, phone => '+1 555 0100' }],
    ['mid',      { email => 'mid@acme.com',     name => 'Mary Ann',    metadata => { plan => 'pro',  seats => 50,  active => JSON::PP::false, nested => { plan => 'pro' } } }],
    ['user 4',   { email => 'four@example.org', name => 'John Smith',  metadata => { plan => 'pro',  seats => 5.5, tags => ['a'] }, avatarUrl => 'https://a.io/4.png' }],
    ['ünï',      { email => 'UNI@example.org',  name => 'Ünï Çödé' }],
    map { [sprintf('p%02d', $_), { email => sprintf('p%02d@filler.net', $_), name => sprintf('Filler %02d', $_),
                                   metadata => { plan => 'basic', n => $_ } }] } 6 .. 25,
);
my @order = map { $_->[0] } @fix;
my %got;
for my $f (@fix) {
    $r = $env->api('PATCH', pct($f->[0]), $key, $f->[1]);
    envelope_ok($r, 200, undef, "create $f->[0]") or BAIL_OUT('cannot create fixtures');
}
for my $ext (@order) { $got{$ext} = $env->api('GET', pct($ext), $key)->{json}{data}{customer} }
# the other app: same externalId and email as one of acme's, and its own
for my $f (['zeta', { email => 'zeta@acme.com', name => 'Other Zeta' }],
           ['o2', { email => 'o2@other.com', name => 'Other Two', metadata => { plan => 'pro' } }]) {
    envelope_ok($env->api('PATCH', $f->[0], $other, $f->[1]), 200, undef, "other app: create $f->[0]");
}

# ---------------------------------------------------------------- pages
my $snap = $env->snapshot;

$r = list();
envelope_ok($r, 200, undef, 'first page, default limit');
is_deeply(page_ids($r), [@order[0 .. 19]], 'default limit 20, creation order (not by externalId or name)');
is(data($r)->{total}, 25, 'total 25');
cursor_set($r, 'first page');
is_deeply(data($r)->{customers}[$_], $got{ $order[$_] }, "item $_ is what GET returns") for 0 .. 19;
my @no_extra = grep { exists $_->{notesCount} } @{ data($r)->{customers} || [] };
ok(!@no_extra, 'no notesCount without include');

my $r2 = list('?cursor=' . pct(data($r)->{nextCursor} // ''));
envelope_ok($r2, 200, undef, 'second page');
is_deeply(page_ids($r2), [@order[20 .. 24]], 'second page: the last 5');
cursor_null($r2, 'last page');
is(data($r2)->{total}, 25, 'second page: total 25');

$r = list('?limit=100');
is_deeply(page_ids($r), \@order, 'limit=100: everything in one page');
cursor_null($r, 'limit=100');
$r = list('?limit=25');
is_deeply(page_ids($r), \@order, 'limit=25: the 25 customers');

for my $lim (1, 7) {
    my ($items, $pages) = follow("?limit=$lim");
    all_200($pages, "limit=$lim walk");
    is_deeply(ids_of($items), \@order, "limit=$lim: following nextCursor gives every customer once, in order");
    is(scalar @$pages, int((25 + $lim - 1) / $lim), "limit=$lim: " . int((25 + $lim - 1) / $lim) . ' pages');
    my @big = grep { @{ $_->{json}{data}{customers} || [] } > $lim } @$pages;
    ok(!@big, "limit=$lim: no page holds more than $lim");
}
my @seq = map { seqno($got{$_}{id}) } @order;
is_deeply(\@seq, [sort { $a <=> $b } @seq], 'ids grow in creation order');

# ---------------------------------------------------------------- filters
my @filters = (
    ['email=acme',                       [qw(zeta mid)]],
    ['email=ACME',                       [qw(zeta mid)],          'case-insensitive'],
    ['email=%40Beta',                    [qw(alpha)],             'percent-decoded'],
    ['email=filler.net',                 [map { sprintf 'p%02d', $_ } 6 .. 25]],
    ['name=smith',                       ['alpha', 'user 4']],
    ['name=SMITH',                       ['alpha', 'user 4'],     'case-insensitive'],
    ['name=john+smith',                  ['user 4'],              '+ is a space'],
    ['name=John%20Smith',                ['user 4'],              '%20 is a space'],
    ['name=' . pct('Çöd'),               ['ünï'],                 'UTF-8 substring'],
    ['name=a&email=acme',                [qw(zeta mid)],          'both filters'],
    ['metadata.plan=pro',                ['zeta', 'mid', 'user 4']],
    ['metadata.seats=5',                 [qw(zeta alpha)],        'number 5 and string "5", not 50 or 5.5'],
    ['metadata.seats=5.5',               ['user 4'],              'a fractional number'],
    ['metadata.active=true',             [qw(zeta alpha)],        'boolean true and string "true"'],
    ['metadata.active=false',            [qw(mid)]],
    ['metadata.plan=pro&metadata.seats=5', [qw(zeta)],            'all metadata filters must match'],
    ['metadata.plan=pro&name=mary',      [qw(mid)]],
    ['metadata.plan=PRO',                [],                      'metadata is exact, case-sensitive'],
    ['metadata.plan=pr',                 [],                      'metadata is not a substring'],
    ['metadata.nested=' . pct('{"plan":"pro"}'), [],              'objects never match'],
    ['metadata.tags=a',                  [],                      'arrays never match'],
    ['metadata.missing=x',               []],
    ['metadata.n=7',                     ['p07']],
    ['name=nobody',                      []],
);
for my $f (@filters) {
    my ($q, $want, $why) = @$f;
    my $name = "filter $q" . ($why ? " ($why)" : '');
    $r = list("?limit=100&$q");
    envelope_ok($r, 200, undef, $name);
    is_deeply(page_ids($r), $want, "$name: matches") or diag $r->{body};
    is(data($r)->{total}, 25, "$name: total ignores filters");
    cursor_null($r, $name);
}
{
    my ($items, $pages) = follow('?limit=3&email=FILLER');
    all_200($pages, 'filtered walk');
    is_deeply(ids_of($items), [map { sprintf 'p%02d', $_ } 6 .. 25], 'filter + limit=3: every match once, in order');
    is(scalar @$pages, 7, 'filter + limit=3: 7 pages');
}

# ---------------------------------------------------------------- include=notesCount
my %notes = (mid => 3, zeta => 1);
for my $ext (sort keys %notes) {
    for my $i (1 .. $notes{$ext}) {
        my $nr = $env->api('POST', "/api/v1/customers/$ext/notes", $key, { note => "note $i of $ext" });
        envelope_ok($nr, 201, undef, "note $i on $ext");
    }
}
$snap = $env->snapshot;
$r = list('?limit=100&include=notesCount');
envelope_ok($r, 200, undef, 'include=notesCount');
is_deeply({ map { $_->{externalId} => $_->{notesCount} } @{ data($r)->{customers} || [] } },
          { map { $_ => $notes{$_} // 0 } @order }, 'notesCount per customer (0 without notes)');
is_deeply({ %{ data($r)->{customers}[0] // {} }, notesCount => undef }, { %{ $got{zeta} }, notesCount => undef },
          'notesCount is added to the customer object');
$r = list('?include=notesCount&metadata.plan=pro&limit=2');
is_deeply([map { $_->{notesCount} } @{ data($r)->{customers} || [] }], [1, 3], 'notesCount with a filter and limit');

# ---------------------------------------------------------------- errors
my $LIMIT   = [limit => 'must be an integer from 1 to 100'];
my $CURSOR  = [cursor => 'is not a cursor this API issued'];
my $INCLUDE = [include => 'only notesCount can be included'];
for my $bad ('0', '101', 'abc', '-1', '1.5', '20x', '') {
    refused("limit=$bad", 400, 'VALIDATION_ERROR', sub { list("?limit=$bad") }, $LIMIT);
}
for my $bad ('not-a-cursor', 'zzz', '@@@@', pct('{"s":1}'), '') {
    refused("cursor=$bad", 400, 'VALIDATION_ERROR', sub { list("?cursor=$bad") }, $CURSOR);
}
refused('include=notes', 400, 'VALIDATION_ERROR', sub { list('?include=notes') }, $INCLUDE);
refused('include=customers', 400, 'VALIDATION_ERROR', sub { list('?include=customers') }, $INCLUDE);
refused('unknown parameter foo', 400, 'VALIDATION_ERROR', sub { list('?foo=1') }, [foo => 'is not a known parameter']);
refused('unknown parameter sort', 400, 'VALIDATION_ERROR', sub { list('?limit=5&sort=name') },
        [sort => 'is not a known parameter']);
refused('text is a notes filter, not a customers one', 400, 'VALIDATION_ERROR', sub { list('?text=x') },
        [text => 'is not a known parameter']);
refused('every violation reported, in the order of the query', 400, 'VALIDATION_ERROR',
        sub { list('?limit=0&foo=1&include=x') }, $LIMIT, [foo => 'is not a known parameter'], $INCLUDE,
        { ordered => 1, message => 'limit must be an integer from 1 to 100' });
refused('no key', 401, 'UNAUTHORIZED', sub { $env->request('GET', '/api/v1/customers') });
refused('empty key', 401, 'UNAUTHORIZED', sub { list('', '') });
refused('unknown key', 401, 'UNAUTHORIZED', sub { list('', 'sdk_unknown_key_0000') });
refused('no key and a bad limit: 401 first', 401, 'UNAUTHORIZED',
        sub { $env->request('GET', '/api/v1/customers?limit=0') });
is_deeply($env->snapshot, $snap, 'listing changed nothing in Redis');

# ---------------------------------------------------------------- tenant isolation
$r = list('?limit=100', $other);
envelope_ok($r, 200, undef, 'other app lists');
is_deeply(page_ids($r), [qw(zeta o2)], 'other app sees only its own customers');
is(data($r)->{total}, 2, 'other app: total 2');
is($r->{json}{data}{customers}[0]{name}, 'Other Zeta', "other app's zeta is its own");
$r = list('?email=acme', $other);
is_deeply(page_ids($r), ['zeta'], 'other app: filter sees only its own');
$r = list('?include=notesCount', $other);
is_deeply([map { $_->{notesCount} } @{ data($r)->{customers} || [] }], [0, 0],
          "other app: acme's notes are not counted");
{
    # a cursor is a position in the creation sequence, not bound to an app:
    # acme's after its 2nd customer (s=2) is, for the other app (s=1 zeta,
    # s=2 o2), the end of its list: an empty last page of its own data
    my $c = data(list('?limit=2'))->{nextCursor} // '';
    $r = list('?limit=100&cursor=' . pct($c), $other);
    envelope_ok($r, 200, undef, "acme's cursor with the other key: 200");
    is_deeply(page_ids($r), [], "acme's cursor with the other key: the other app's list after s=2, empty");
    cursor_null($r, "acme's cursor with the other key");
    is(data($r)->{total}, 2, "acme's cursor with the other key: the other app's total");
    $r = list('?limit=100&cursor=' . pct(data(list('?limit=1'))->{nextCursor} // ''), $other);
    is_deeply(page_ids($r), ['o2'], "acme's cursor after s=1 with the other key: the other app's o2, nothing of acme");
}
is(data(list())->{total}, 25, 'acme still has 25');

# ---------------------------------------------------------------- scan limit
{
    $r = list('?limit=100', undef, 's10');
    envelope_ok($r, 200, undef, 'scan limit 10, limit 100');
    is_deeply(page_ids($r), [@order[0 .. 9]], 'scan limit 10: a page of 10 although limit is 100');
    cursor_set($r, 'scan limit 10');
    my ($items, $pages) = follow('?limit=100', loc => 's10');
    all_200($pages, 'scan limit 10 walk');
    is_deeply(ids_of($items), \@order, 'scan limit 10: the walk returns everyone once');

    $r = list('?name=filler+25', undef, 's10');
    envelope_ok($r, 200, undef, 'scan limit 10, filter matching the last customer');
    is_deeply(page_ids($r), [], 'first page empty');
    cursor_set($r, 'empty first page');
    ($items, $pages) = follow('?name=filler+25', loc => 's10');
    all_200($pages, 'filtered walk, scan limit 10');
    is_deeply(ids_of($items), ['p25'], 'the match is found once, at the end');
    is(scalar @$pages, 3, '3 pages of at most 10 records examined');

    ($items, $pages) = follow('?metadata.plan=none', loc => 's10');
    is_deeply(ids_of($items), [], 'no match: nothing');
    is(scalar @$pages, 3, 'no match: 3 pages, then the cursor is null');
}

# a big app: 3,000 customers, a filter that matches nothing
my $bigkey = $env->create_key('big', 'big app');
$env->seed_customers('big', [ map { { externalId => "b$_", email => "b$_\@big.example", name => "Big $_",
                                      metadata => { n => $_ } } } 1 .. 3000 ]);
is($env->customer_count('big'), 3000, 'big app seeded with 3,000 customers');
{
    my $t = time;
    $r = list('?name=nomatch', $bigkey, 's100');
    my $took = time - $t;
    envelope_ok($r, 200, undef, 'big app, scan limit 100, filter matching nothing');
    is_deeply(page_ids($r), [], 'first page is empty');
    cursor_set($r, 'big app first page');
    is(data($r)->{total}, 3000, 'total 3000');
    cmp_ok($took, '<', 1, 'answered at once');
    my ($items, $pages) = follow('?name=nomatch', key => $bigkey, loc => 's100');
    all_200($pages, 'big app walk');
    is(scalar @$pages, 30, '30 pages of 100 records, then null');
    is_deeply(ids_of($items), [], 'nothing found');
    ($items, $pages) = follow('?name=big+1500&limit=5', key => $bigkey, loc => 's100');
    is_deeply(ids_of($items), ['b1500'], 'a single match in the middle is found once');

    $r = list('?name=nomatch', $bigkey);
    is_deeply(page_ids($r), [], 'default scan limit (1000): first page empty too');
    cursor_set($r, 'default scan limit');
    ($items, $pages) = follow('?limit=100', key => $bigkey, loc => 's100');
    is(scalar @$items, 3000, 'big app: the full walk returns 3000');
    my %c; $c{$_}++ for @{ ids_of($items) };
    is(scalar(grep { $c{$_} != 1 } keys %c), 0, 'big app: nobody twice');
    is_deeply(ids_of($items), [map { "b$_" } 1 .. 3000], 'big app: in creation order');
}

# deleted customers in the way of a page without a filter: a few within the
# sequence numbers a page reads anyway, and a run longer than that (read
# past by redis/list.lua's walk instead); every page still full and in
# order, nobody twice, the total down by the deleted
{
    my @gone = (21 .. 60, 85);
    for my $i (@gone) {
        envelope_ok($env->api('DELETE', "b$i", $bigkey), 200, undef, "delete b$i") or last;
    }
    my %gone = map { ($_ => 1) } @gone;
    my @left = map { "b$_" } grep { !$gone{$_} } 1 .. 3000;
    $r = list('?limit=20', $bigkey);
    is_deeply(page_ids($r), [@left[0 .. 19]], 'after deletes: the first page');
    is(data($r)->{total}, 3000 - @gone, 'after deletes: total ' . (3000 - @gone));
    $r = list('?limit=20&cursor=' . pct(data($r)->{nextCursor} // ''), $bigkey);
    is_deeply(page_ids($r), [@left[20 .. 39]], 'after deletes: the page after 40 deleted (b61..b80)');
    $r = list('?limit=20&cursor=' . pct(data($r)->{nextCursor} // ''), $bigkey);
    is_deeply(page_ids($r), [@left[40 .. 59]], 'after deletes: the page past one deleted (b85)');
    for my $c (['?limit=20', 's1000 limit 20', undef], ['?limit=7&include=notesCount', 'limit 7, notes counted', undef],
               ['?limit=100', 'limit 100, scan limit 100', 's100']) {
        my ($items, $pages) = follow($c->[0], key => $bigkey, $c->[2] ? (loc => $c->[2]) : ());
        all_200($pages, "after deletes, $c->[1]: walk");
        is_deeply(ids_of($items), \@left, "after deletes, $c->[1]: everyone left, once, in order");
    }
}

# ---------------------------------------------------------------- concurrent writes
# app 'conc': keep_* exist throughout; a writer deletes del_* and creates new
# ones while the reader follows nextCursor with a small limit and a scan
# limit of 20
my $ckey = $env->create_key('conc', 'concurrency');
$env->seed_customers('conc', [ map { my $d = $_ % 4 == 0;
    { externalId => ($d ? "del_$_" : "keep_$_"), email => "c$_\@conc.example",
      name => ($d ? "Del $_" : "Keep $_") } } 1 .. 400 ]);
my @keep = map { "keep_$_" } grep { $_ % 4 } 1 .. 400;

sub writer {
    my ($tag, $dels, $new_name, $stop) = @_;
    my $log = $env->tmp . "/writer.$tag";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my @ops;
        my @d = @$dels;
        my $j = 0;
        # its deletes all done even when the walk ends first (a slow
        # machine): the check after the writers expects every del_ gone
        while ((!-e $stop || @d) && $j < 400) {
            $j++;
            my $t = time;
            my $x = $env->api('PATCH', "new${tag}_$j", $ckey,
                { email => "new${tag}_$j\@conc.example", name => "$new_name $j" });
            push @ops, [$t, 'create', "new${tag}_$j", $x->{status}];
            if (@d && $j % 2) {
                my $ext = splice @d, int(rand @d), 1;
                $x = $env->api('DELETE', $ext, $ckey);
                push @ops, [time, 'delete', $ext, $x->{status}];
            }
            sleep 0.003;
        }
        open my $fh, '>', $log; print $fh json_encode(\@ops); close $fh;
        POSIX::_exit(0);
    }
    return sub {
        open my $s, '>', $stop; close $s;
        waitpid $pid, 0;
        open my $fh, '<', $log or return [];
        local $/;
        return json_decode(<$fh>) // [];
    };
}
sub concurrent_walk {
    my ($tag, $q, $dels, $new_name, $want_keep, $match) = @_;
    my $stop = $env->tmp . "/stop.$tag";
    my $done = writer($tag, $dels, $new_name, $stop);
    sleep 0.05;
    my $t0 = time;
    my ($items, $pages) = follow($q, key => $ckey, loc => 's20', between => sub { sleep 0.01 });
    my $t1 = time;
    my $ops = $done->();
    all_200($pages, "$tag: concurrent walk");
    my @bad = grep { $_->[3] != 200 } @$ops;
    ok(!@bad, "$tag: the writer's requests succeeded (" . scalar(@$ops) . ' ops)')
        or diag json_encode($bad[0]);
    my @during = grep { $_->[0] > $t0 && $_->[0] < $t1 } @$ops;
    cmp_ok(scalar @during, '>=', 10, "$tag: writes happened during the walk (" . scalar(@during) . ')');
    my $ids = ids_of($items);
    my %n; $n{$_}++ for @$ids;
    my @twice = grep { $n{$_} > 1 } sort keys %n;
    ok(!@twice, "$tag: nobody returned twice") or diag "twice: @twice[0 .. ($#twice < 9 ? $#twice : 9)]";
    my @missing = grep { !$n{$_} } @$want_keep;
    ok(!@missing, "$tag: every customer that existed throughout returned exactly once ("
       . scalar(@$want_keep) . ')') or diag "missing: " . scalar(@missing) . ": @missing[0 .. ($#missing < 9 ? $#missing : 9)]";
    my @keep_order = grep { /^keep_/ } @$ids;
    is_deeply(\@keep_order, $want_keep, "$tag: in creation order");
    my @nomatch = grep { !$match->($_) } @$ids;
    ok(!@nomatch, "$tag: only matching customers") or diag "@nomatch";
    my @s = map { seqno($_->{id}) } @$items;
    my @sorted = sort { $a <=> $b } @s;
    is_deeply(\@s, \@sorted, "$tag: ids strictly in creation order across pages");
    my ($first_new) = grep { $ids->[$_] =~ /^new/ } 0 .. $#$ids;
    my ($last_old) = reverse grep { $ids->[$_] =~ /^(keep|del)_/ } 0 .. $#$ids;
    ok(!defined $first_new || $first_new > $last_old, "$tag: created customers appear at the end");
    diag sprintf "%s: %d pages, %d items (%d new), %d writes during the walk",
        $tag, scalar @$pages, scalar @$ids, scalar(grep { /^new/ } @$ids), scalar @during;
    # the writer stops with the walk: on a slow machine it may not have
    # deleted them all
    return map { $_->[2] } grep { $_->[1] eq 'delete' } @$ops;
}
my @dels = map { "del_$_" } grep { $_ % 4 == 0 } 1 .. 400;
my %deleted = map { $_ => 1 }
    concurrent_walk('A', '?limit=7', [grep { /(\d+)$/ && $1 % 8 == 0 } @dels], 'New',
                    \@keep, sub { 1 }),
    concurrent_walk('B', '?limit=5&name=keep', [grep { /(\d+)$/ && $1 % 8 } @dels], 'Keep late',
                    \@keep, sub { $_[0] =~ /^(keep_|newB_)/ });
{
    my ($items, $pages) = follow('?limit=100', key => $ckey, loc => 's20');
    is_deeply(ids_of($items), [$env->order_of('conc')],
              'after the writers: the walk is exactly the order set');
    my %listed = map { $_ => 1 } @{ ids_of($items) };
    ok(!grep({ $listed{$_} } keys %deleted), 'every del_ deleted is gone (' . scalar(keys %deleted) . ')');
    is_deeply([ grep { !$deleted{$_} && !$listed{$_} } @dels ], [], '... every other one is still listed');
}

$env->invariants_ok($_) for qw(acme other big conc);
done_testing;
