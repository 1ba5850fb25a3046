# PATCH /customers: batch upsert. Per-item results in request order; a
# 1000-item batch with validation errors, duplicate emails inside the batch
# and emails taken by existing customers, checked against a sequential model
# (items behave as if sent one after the other); failing items change
# nothing. Whole-request errors (shape, JSON, media type, size, key) change
# nothing at all. Tenant isolation.
# Configuration: the harness's default, plus location /api/b2k/ with
# supportdesk_batch_max_body_size 2k.
use strict;
use warnings;
use utf8;
use Test::More;
use SupportDesk::Test qw(envelope_ok fields_ok json_encode json_decode pct);

my $env = SupportDesk::Test->new(
    server_conf => 'location /api/b2k/ { supportdesk; supportdesk_batch_max_body_size 2k; }',
);
my $key   = $env->create_key('acme', 'batch tests');
my $other = $env->create_key('other', 'tenant isolation');
my $R = $env->redis;
my $r;

sub batch {
    my ($body, %o) = @_;
    my $k = exists $o{key} ? $o{key} : $key;
    my $loc = $o{loc} // 'v1';
    return $env->api('PATCH', "/api/$loc/customers", $k, $body, timeout => 30, %o);
}
sub results { my $x = $_[0]{json}{data}{results}; ref $x eq 'ARRAY' ? $x : [] }
sub refused { $env->refused(@_) }
sub hash_of { my ($ext, $app) = @_; return { $R->hgetall('sd:{' . ($app // 'acme') . "}:c:$ext") } }
sub bytes { my $s = shift; utf8::encode($s); $s }
# what is wrong with a failed item's error: exactly {code, message[, details]}
# with that code and message, and exactly the details @$details
sub item_error_problems {
    my ($item, $code, $message, $details) = @_;
    my $e = ref $item eq 'HASH' ? $item->{error} : undef;
    return ('no error object') unless ref $e eq 'HASH';
    my @p;
    push @p, 'error members ' . join(',', sort keys %$e)
        unless join(',', sort keys %$e) eq join(',', sort('code', 'message', @$details ? 'details' : ()));
    push @p, 'code ' . ($e->{code} // 'undef') . " want $code" unless ($e->{code} // '') eq $code;
    push @p, 'message ' . ($e->{message} // 'undef') . " want $message" unless ($e->{message} // '') eq $message;
    push @p, SupportDesk::Test::details_problems($e->{details}, $details);
    return @p;
}

# ---------------------------------------------------------------- small batch
for my $i (1 .. 5) {
    $r = $env->api('PATCH', "exist_$i", $key, { email => ($i == 1 ? 'taken@acme.com' : $i == 4 ? 'swap-from@acme.com' : "e$i\@acme.com"),
                                                name => "Existing $i", ($i == 3 ? (phone => '123') : ()) });
    envelope_ok($r, 200, undef, "setup exist_$i") or BAIL_OUT('setup failed');
}

$r = batch({ customers => [
    { externalId => 's1', email => 's1@acme.com', name => '  Small One ', metadata => { k => 1 } },
    { externalId => 'exist_2', name => 'Renamed Two', phone => '+1 555' },
    { externalId => 's2', email => 'not an email', name => 'S2' },
    { externalId => 'üñí 3', email => 'S3@Acme.com', name => 'Ünïcode' },
] });
envelope_ok($r, 200, undef, 'small batch');
my $res = results($r);
is(scalar @$res, 4, 'four results');
is_deeply($res->[0], { externalId => 's1', success => JSON::PP::true, wasCreated => JSON::PP::true }, 'item 0: created');
is_deeply($res->[1], { externalId => 'exist_2', success => JSON::PP::true, wasCreated => JSON::PP::false }, 'item 1: updated');
is($res->[2]{externalId}, 's2', 'item 2: externalId echoed');
is($res->[2]{success}, JSON::PP::false, 'item 2: failed');
my @ip = item_error_problems($res->[2], 'VALIDATION_ERROR', 'email must not contain white space or control characters',
                             [[email => 'must not contain white space or control characters']]);
ok(!@ip, 'item 2: VALIDATION_ERROR, its message, exactly the email detail') or diag join("\n", @ip), "\n", json_encode($res->[2]);
is_deeply([sort keys %{ $res->[2] }], [qw(error externalId success)], 'a failed item has externalId, success, error');
is_deeply($res->[3], { externalId => 'üñí 3', success => JSON::PP::true, wasCreated => JSON::PP::true },
          'item 3: UTF-8 externalId, not percent-decoded');
my $h = hash_of('s1');
is($h->{n}, 'Small One', 'Redis: s1 name trimmed');
is($h->{e}, 's1@acme.com', 'Redis: s1 email');
is_deeply(json_decode($h->{m} // ''), { k => 1 }, 'Redis: s1 metadata');
is($env->email_owner('acme', 's1@acme.com'), 's1', 'Redis: s1 email index');
$h = hash_of('exist_2');
is($h->{n}, 'Renamed Two', 'Redis: exist_2 renamed');
is($h->{p}, '+1 555', 'Redis: exist_2 phone');
is($h->{e}, 'e2@acme.com', 'Redis: exist_2 email kept');
ok(!$R->exists('sd:{acme}:c:s2'), 'Redis: s2 not created');
is($h = hash_of(bytes('üñí 3'))->{n}, bytes('Ünïcode'), 'Redis: UTF-8 externalId key');
is($env->email_owner('acme', 's3@acme.com'), bytes('üñí 3'), 'Redis: lowercase email index');
$r = $env->api('GET', pct('üñí 3'), $key);
envelope_ok($r, 200, undef, 'GET the batch-created customer');
is($r->{json}{data}{customer}{name}, 'Ünïcode', '... with its name');
$env->invariants_ok('acme');

# a percent sign is not decoded in a body externalId
$r = batch({ customers => [{ externalId => 'pct%20id', email => 'pct@acme.com', name => 'Pct' }] });
is_deeply(results($r), [{ externalId => 'pct%20id', success => JSON::PP::true, wasCreated => JSON::PP::true }],
          'externalId with %20 kept as sent');
ok($R->exists('sd:{acme}:c:pct%20id'), "Redis: key 'sd:{acme}:c:pct%20id'");

# ---------------------------------------------------------------- 1000 items
# sequential model of the app: ext -> {e, n, p}; lowercase email -> ext
my (%cust, %owner);
sub chars { my $s = shift; utf8::decode($s); $s }
for my $bext ($env->order_of('acme')) {
    my $x = hash_of($bext);
    my $ext = chars($bext);
    $cust{$ext} = { e => chars($x->{e}), n => chars($x->{n}) };
    $owner{ lc $cust{$ext}{e} } = $ext;
}
my %orig = map { $_ => { %{ hash_of($_) } } } qw(exist_1 exist_3 exist_5);

my $PHONE = 'must contain only digits, spaces and + - ( ) .';
my @invalid = (    # [item, [field => message] of its one detail, externalId in the result]
    sub { my $i = shift; ({ externalId => "b_$i", email => 'not-an-email', name => "Batch $i" }, [email => 'must be a valid email address'], "b_$i") },
    sub { my $i = shift; ({ externalId => "b_$i", email => "b$i\@batch.example" }, [name => 'is required on create'], "b_$i") },
    sub { my $i = shift; ({ externalId => "b_$i", email => "b$i\@batch.example", name => "B $i", phone => 'abc' }, [phone => $PHONE], "b_$i") },
    sub { my $i = shift; ({ externalId => "b_$i", email => "b$i\@batch.example", name => "B $i", bogus => 1 }, [bogus => 'is not a known field'], "b_$i") },
    sub { my $i = shift; ({ externalId => "b/$i", email => "b$i\@batch.example", name => "B $i" }, [externalId => "must not contain '/'"], ["b/$i"]) },
    sub { my $i = shift; ({ email => "b$i\@batch.example", name => "B $i" }, [externalId => 'is required'], undef) },
    sub { my $i = shift; ({ externalId => 'x' x 256, email => "b$i\@batch.example", name => "B $i" }, [externalId => 'must be 1-255 bytes'], ['x' x 256]) },
    sub { my $i = shift; (42, [customers => 'items must be objects'], undef) },
    sub { my $i = shift; ({ externalId => 7, email => "b$i\@batch.example", name => "B $i" }, [externalId => 'must be a string'], undef) },
    sub { my $i = shift; ({ externalId => '', email => "b$i\@batch.example", name => "B $i" }, [externalId => 'must be 1-255 bytes'], ['']) },
    sub { my $i = shift; ({ externalId => "b_$i", email => "b$i\@batch.example", name => '   ' }, [name => 'must not be empty'], "b_$i") },
    sub { my $i = shift; ({ externalId => "b_$i", email => "b$i\@batch.example", name => "B $i", metadata => [1] }, [metadata => 'must be an object'], "b_$i") },
    sub { my $i = shift; ({ externalId => "b_$i", email => "b$i\@batch.example", name => "B $i", id => 'cus_1' }, [id => 'is read-only'], "b_$i") },
    sub { my $i = shift; ({ externalId => "exist_3", phone => 'not a phone' }, [phone => $PHONE], 'exist_3') },
);
my (@items, @want);
my $nv = 0;
for my $i (1 .. 1000) {
    my ($item, $bad_field, $rid, $invalid);
    if ($i % 10 == 3) {
        ($item, $bad_field, $rid) = $invalid[$nv++ % @invalid]->($i);
        $invalid = 1;
    } elsif ($i == 5)  { $item = { externalId => 'exist_2', name => 'Renamed Again' } }
    elsif ($i == 25) { $item = { externalId => 'exist_4', email => 'swapped@acme.com' } }
    elsif ($i == 26) { $item = { externalId => "b_$i", email => 'Swap-From@acme.com', name => 'Took the old email' } }
    elsif ($i == 35) { $item = { externalId => "b_35", email => 'dup35@x.example', name => 'Dup 35' } }
    elsif ($i == 36) { $item = { externalId => "b_35", email => 'DUP35@x.example', name => 'Dup 35 again' } }
    elsif ($i == 46) { $item = { externalId => "b_45", email => 'taken@acme.com' } }
    elsif ($i == 55) { $item = { externalId => "exist_5", email => 'b54@batch.example' } }
    elsif ($i == 65) { $item = { externalId => "b_$i", email => 'E5@acme.com', name => 'Wants e5' } }
    elsif ($i % 100 == 50) { $item = { externalId => "b_$i", email => 'TAKEN@acme.com', name => "B $i" } }
    elsif ($i % 10 == 7) { $item = { externalId => "b_$i", email => uc($items[-1]{email} // "b$i\@batch.example"), name => "B $i" } }
    else { $item = { externalId => "b_$i", email => "b$i\@batch.example", name => "Batch $i", metadata => { i => $i } } }
    push @items, $item;

    if ($invalid) {
        push @want, { ext => $rid, code => 'VALIDATION_ERROR', detail => $bad_field };
        next;
    }
    my $ext = $item->{externalId};
    my $lc = defined $item->{email} ? lc $item->{email} : undef;
    if (defined $lc && exists $owner{$lc} && $owner{$lc} ne $ext) {
        push @want, { ext => $ext, code => 'CUSTOMER_EMAIL_EXISTS' };
        next;
    }
    my $created = !exists $cust{$ext};
    my $c = $cust{$ext} //= {};
    if (defined $lc) {
        delete $owner{ lc $c->{e} } if defined $c->{e};
        $c->{e} = $item->{email};
        $owner{$lc} = $ext;
    }
    $c->{n} = $item->{name} if defined $item->{name};
    push @want, { ext => $ext, created => $created ? 1 : 0 };
}
my %codes;
$codes{ $_->{code} // 'ok' }++ for @want;
diag 'expected: ' . join ', ', map { "$_ $codes{$_}" } sort keys %codes;
is($codes{CUSTOMER_EMAIL_EXISTS}, 113, 'fixture: 113 items the model expects to be 409s');
is($codes{VALIDATION_ERROR}, 100, 'fixture: 100 invalid items');
is($codes{ok}, 787, 'fixture: 787 items the model expects to succeed');

my $body = json_encode({ customers => \@items });
cmp_ok(length $body, '>', 65536, 'the 1000-item body is over 64 KiB (the batch limit applies, not max_body_size)');
$r = batch($body);
envelope_ok($r, 200, undef, '1000-item batch');
$res = results($r);
is(scalar @$res, 1000, '1000 results');
my @wrong;
for my $i (0 .. 999) {
    my ($g, $w) = ($res->[$i] // {}, $want[$i]);
    my @p;
    if (ref $w->{ext}) {    # an invalid string id: echoed or null
        push @p, 'externalId ' . ($g->{externalId} // 'undef')
            unless exists $g->{externalId} && (!defined $g->{externalId} || $g->{externalId} eq $w->{ext}[0]);
    } elsif (!defined $w->{ext}) {
        push @p, 'externalId should be null' unless exists $g->{externalId} && !defined $g->{externalId};
    } else {
        push @p, 'externalId ' . ($g->{externalId} // 'undef') unless ($g->{externalId} // "\0") eq $w->{ext};
    }
    my $members = join ',', sort keys %$g;
    if ($w->{code}) {
        push @p, 'success should be false' unless JSON::PP::is_bool($g->{success}) && !$g->{success};
        push @p, "members $members" unless $members eq 'error,externalId,success';
        if ($w->{code} eq 'VALIDATION_ERROR') {
            # one violation per invalid item: the message quotes it
            push @p, item_error_problems($g, $w->{code}, "$w->{detail}[0] $w->{detail}[1]", [$w->{detail}]);
        } else {
            # an email taken: the code and message, and the email named in
            # details, as a single upsert's 409 does
            push @p, item_error_problems($g, $w->{code}, $SupportDesk::Test::MESSAGE{$w->{code}},
                                         [['email', 'is already used by another customer']]);
        }
    } else {
        push @p, 'success should be true' unless JSON::PP::is_bool($g->{success}) && $g->{success};
        push @p, "members $members" unless $members eq 'externalId,success,wasCreated';
        push @p, 'wasCreated ' . json_encode([$g->{wasCreated}]) . " want $w->{created}"
            unless JSON::PP::is_bool($g->{wasCreated}) && ($g->{wasCreated} ? 1 : 0) == $w->{created};
    }
    push @wrong, "item $i: " . join('; ', @p) . ' -- got ' . json_encode($g) if @p;
}
ok(!@wrong, 'every result as the sequential model says, in request order')
    or diag join "\n", @wrong[0 .. ($#wrong < 19 ? $#wrong : 19)], scalar(@wrong) . ' wrong';
is($res->[25]{success}, JSON::PP::true, 'an email freed earlier in the batch can be taken later in it');
is($res->[35]{wasCreated}, JSON::PP::false, 'the same externalId twice: the second is an update');

# Redis against the model
my %emails = %{ $env->email_index('acme') };
my %model_emails = map { bytes($_) => bytes($owner{$_}) } keys %owner;
is_deeply(\%emails, \%model_emails, 'Redis: the email index is exactly the model');
is($env->customer_count('acme'), scalar(keys %cust), 'Redis: customer count as the model');
my @diff;
for my $ext (sort keys %cust) {
    my $x = hash_of(bytes($ext));
    push @diff, "$ext: e=" . ($x->{e} // 'undef') . " want $cust{$ext}{e}" if ($x->{e} // '') ne bytes($cust{$ext}{e});
    push @diff, "$ext: n=" . ($x->{n} // 'undef') . " want $cust{$ext}{n}" if ($x->{n} // '') ne bytes($cust{$ext}{n});
}
ok(!@diff, 'Redis: every customer has the email and name of the model') or diag join "\n", @diff[0 .. ($#diff < 9 ? $#diff : 9)];
is_deeply(hash_of('exist_3'), $orig{exist_3}, 'exist_3 (failed update) unchanged');
is_deeply(hash_of('exist_1'), $orig{exist_1}, 'exist_1 (its email claimed by others) unchanged');
is(hash_of('b_45')->{e}, 'b45@batch.example', 'b_45 kept its email after a failed change');
is(hash_of('exist_5')->{e}, 'e5@acme.com', 'exist_5 kept its email after a failed change');
my @failed_new = grep { $want[$_]{code} && ref $items[$_] && ($items[$_]{externalId} // '') =~ /^b_\d+$/ && !exists $cust{ $items[$_]{externalId} } } 0 .. 999;
my @leftover = grep { $R->exists("sd:{acme}:c:$items[$_]{externalId}") } @failed_new;
ok(!@leftover, 'no customer for any failed create (' . scalar(@failed_new) . ')') or diag "@leftover";
ok(!$R->exists('sd:{acme}:c:b/3'), 'no customer with a / in its id');
is_deeply(json_decode(hash_of('b_1')->{m} // ''), { i => 1 }, 'b_1 metadata stored');
$env->invariants_ok('acme');

# ---------------------------------------------------------------- whole-request errors
my $one = { externalId => 'w1', email => 'w1@acme.com', name => 'W One' };
refused('body is an array', 400, 'INVALID_JSON', sub { batch([$one]) }, { message => 'body must be a JSON object' });
my $ARRAY = [customers => 'must be an array'];
my $ITEMS = [customers => 'must hold 1 to 1000 items'];
refused('no customers key', 400, 'VALIDATION_ERROR', sub { batch({}) }, [customers => 'is required']);
refused('customers is an object', 400, 'VALIDATION_ERROR', sub { batch({ customers => $one }) }, $ARRAY);
refused('customers is a string', 400, 'VALIDATION_ERROR', sub { batch({ customers => 'x' }) }, $ARRAY);
refused('customers is null', 400, 'VALIDATION_ERROR', sub { batch({ customers => undef }) }, $ARRAY);
refused('no items', 400, 'VALIDATION_ERROR', sub { batch({ customers => [] }) }, $ITEMS);
refused('1001 items', 400, 'VALIDATION_ERROR', sub {
    batch({ customers => [ map { { externalId => "m$_", email => "m$_\@acme.com", name => 'M' } } 1 .. 1001 ] }) },
    $ITEMS);
refused('extra top-level key', 400, 'VALIDATION_ERROR', sub { batch({ customers => [$one], dryRun => 1 }) },
        [dryRun => 'is not a known field']);
refused('malformed JSON', 400, 'INVALID_JSON', sub { batch('{"customers": [') }, { message => 'body is not valid JSON' });
refused('empty body', 400, 'INVALID_JSON', sub { batch('') }, { message => 'body is empty' });
refused('invalid UTF-8', 400, 'INVALID_JSON', sub { batch(qq({"customers":[{"externalId":"w1","email":"w1\@acme.com","name":"\xff"}]})) },
        { message => 'body is not valid UTF-8' });
refused('duplicate key in an item', 400, 'INVALID_JSON', sub {
    batch('{"customers":[{"externalId":"w1","email":"w1@acme.com","name":"A","name":"B"}]}') },
    { message => 'body has a duplicate key' });
refused('text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE', sub {
    batch({ customers => [$one] }, headers => { 'Content-Type' => 'text/plain' }) });
refused('no key', 401, 'UNAUTHORIZED', sub { batch({ customers => [$one] }, key => undef) });
refused('unknown key', 401, 'UNAUTHORIZED', sub { batch({ customers => [$one] }, key => 'sdk_nope') });
refused('no key and a broken body: 401 first', 401, 'UNAUTHORIZED', sub { batch('{', key => undef) });
refused('body over 1m: the message names the batch limit', 413, 'PAYLOAD_TOO_LARGE', sub {
    batch(json_encode({ customers => [$one] }) . (' ' x (1024 * 1024))) },
    { message => 'body is over the limit of 1048576 bytes' });
{
    my $j = json_encode({ customers => [$one] });
    my $b2048 = $j . (' ' x (2048 - length $j));
    refused('supportdesk_batch_max_body_size 2k: 2049 bytes, the message names 2048', 413,
            'PAYLOAD_TOO_LARGE', sub { batch($b2048 . ' ', loc => 'b2k') },
            { message => 'body is over the limit of 2048 bytes' });
    $r = batch($b2048, loc => 'b2k');
    envelope_ok($r, 200, undef, 'supportdesk_batch_max_body_size 2k: 2048 bytes pass');
    is_deeply(results($r), [{ externalId => 'w1', success => JSON::PP::true, wasCreated => JSON::PP::true }], '... and w1 is created');
}
$env->invariants_ok('acme');

# ---------------------------------------------------------------- tenant isolation
{
    my $acme_before = $env->snapshot('sd:{acme}:*');
    my @same = map { { externalId => $_, email => $cust{$_}{e}, name => "Other $_" } }
               grep { !/^\x{fc}/ } (sort keys %cust)[0 .. 49];
    $r = batch({ customers => \@same }, key => $other);
    envelope_ok($r, 200, undef, 'other app: same externalIds and emails as acme');
    my @notcreated = grep { !($_->{success} && $_->{wasCreated}) } @{ results($r) };
    ok(!@notcreated, "other app: every item created (acme's customers and emails are not seen)")
        or diag json_encode($notcreated[0]);
    is_deeply($env->snapshot('sd:{acme}:*'), $acme_before, "acme's keys unchanged");
    is($env->customer_count('other'), scalar @same, 'other app has its own customers');
    my $other_before = $env->snapshot('sd:{other}:*');
    $r = batch({ customers => [{ externalId => $same[0]{externalId}, name => 'Acme renames' }] });
    is_deeply(results($r), [{ externalId => $same[0]{externalId}, success => JSON::PP::true, wasCreated => JSON::PP::false }],
              'acme updates its own customer of that externalId');
    is_deeply($env->snapshot('sd:{other}:*'), $other_before, "other's keys unchanged by acme's batch");
    $env->invariants_ok('other');
}

done_testing;
