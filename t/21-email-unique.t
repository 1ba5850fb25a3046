# Emails are unique per app, case-insensitively; 409 changes nothing; the
# check and the write are atomic under concurrency.
# Configuration: worker_processes 2, supportdesk_redis_connections 4.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(envelope_ok fields_ok json_encode);

my $env = SupportDesk::Test->new(worker_processes => 2,
                                  http_conf => 'supportdesk_redis_connections 4;');
my $key  = $env->create_key('acme');
my $keyB = $env->create_key('globex');
my $R = $env->redis;
my $r;

sub patch { my ($k, $ext, $body) = @_; $env->api('PATCH', $ext, $k, $body) }
my $TAKEN = [email => 'is already used by another customer'];
# the 409 envelope: its code, message and one detail naming email
sub is_409 { my $res = shift; return !SupportDesk::Test::_envelope_problems($res, 409, 'CUSTOMER_EMAIL_EXISTS')
                 && !SupportDesk::Test::details_problems($res->{json}{error}{details}, [$TAKEN]) }
# wasCreated true, read without autovivifying data in an error response
sub was_created {
    my $j = $_[0]{json};
    return ref $j eq 'HASH' && ref $j->{data} eq 'HASH' && JSON::PP::is_bool($j->{data}{wasCreated})
        && $j->{data}{wasCreated};
}
sub refused_409 { my ($name, $do) = @_; $env->refused($name, 409, 'CUSTOMER_EMAIL_EXISTS', $do, $TAKEN) }

envelope_ok(patch($key, 'alice', { email => 'Alice@Example.com', name => 'Alice' }), 200, undef, 'alice');
envelope_ok(patch($key, 'bob', { email => 'bob@example.com', name => 'Bob' }), 200, undef, 'bob');

refused_409('create with an existing email in other case',
            sub { patch($key, 'carol', { email => 'ALICE@example.COM', name => 'Carol' }) });
ok(!$R->exists('sd:{acme}:c:carol'), 'carol not created');
refused_409('update to an existing email in other case',
            sub { patch($key, 'bob', { email => 'alice@EXAMPLE.com' }) });
refused_409('update of name + conflicting email changes neither',
            sub { patch($key, 'bob', { name => 'Bobby', email => 'alice@example.com' }) });
$r = $env->api('GET', 'bob', $key);
is($r->{json}{data}{customer}{name}, 'Bob', 'bob keeps his name');
is($r->{json}{data}{customer}{email}, 'bob@example.com', 'bob keeps his email');

$r = patch($keyB, 'alice', { email => 'alice@example.com', name => 'Alice B' });
envelope_ok($r, 200, undef, 'same email in another app is allowed');
$r = patch($keyB, 'other', { email => 'BOB@example.com', name => 'Bob B' });
envelope_ok($r, 200, undef, "another app may use app A's email under another externalId");

$r = patch($key, 'alice', { email => 'ALICE@EXAMPLE.COM' });
envelope_ok($r, 200, undef, 'customer changes the case of its own email');
is($r->{json}{data}{customer}{email}, 'ALICE@EXAMPLE.COM', 'new casing returned');
is($R->hget('sd:{acme}:c:alice', 'e'), 'ALICE@EXAMPLE.COM', 'Redis: e in new casing');
is($env->email_owner('acme', 'alice@example.com'), 'alice', 'Redis: one lowercase index entry');
is(scalar(keys %{ $env->email_index('acme') }), 2, 'Redis: two index entries (alice, bob)');
$env->invariants_ok('acme');
$env->invariants_ok('globex');

# ---- 50 parallel creates, one email
sub req { my ($ext, $body) = @_;
          $env->http_bytes('PATCH', "/api/v1/customers/$ext", headers => { 'X-API-Key' => $key },
                           body => $body) }
{
    my @res = $env->parallel([ map { req("race_$_", { email => 'Race@Example.com', name => "Racer $_" }) } 1 .. 50 ],
                             timeout => 10);
    my @won  = grep { $res[$_]{status} == 200 } 0 .. 49;
    my @lost = grep { $res[$_]{status} == 409 } 0 .. 49;
    is(scalar @won, 1, '50 parallel creates with one email: exactly one 200')
        or diag join ' ', map { $_->{status} } @res;
    is(scalar @lost, 49, '... and 49 x 409');
    is(scalar(grep { was_created($_) } @res), 1, 'exactly one wasCreated');
    is(scalar(grep { is_409($_) } @res), 49, '49 x the CUSTOMER_EMAIL_EXISTS envelope, naming email');
    my @hashes = grep { $R->exists("sd:{acme}:c:race_$_") } 1 .. 50;
    is(scalar @hashes, 1, 'one customer hash') or diag "@hashes";
    my $winner = @won ? 'race_' . ($won[0] + 1) : '?';
    is_deeply(\@hashes, [ $winner =~ /(\d+)/ ], 'the hash is the winner');
    is($env->email_owner('acme', 'race@example.com'), $winner, 'index entry points at the winner');
    $env->invariants_ok('acme', 'invariants after the create race');
}

# ---- 50 parallel updates to one email
{
    for my $i (1 .. 50) {
        my $x = patch($key, "upd_$i", { email => "upd$i\@example.com", name => "U $i" });
        die "setup failed: $x->{status} $x->{body}" unless $x->{status} == 200;
    }
    my @res = $env->parallel([ map { req("upd_$_", { email => 'target@example.com' }) } 1 .. 50 ],
                             timeout => 10);
    my @won = grep { $res[$_]{status} == 200 } 0 .. 49;
    is(scalar @won, 1, '50 parallel updates to one email: exactly one 200')
        or diag join ' ', map { $_->{status} } @res;
    is(scalar(grep { is_409($_) } @res), 49, '... and 49 x the 409 envelope, naming email');
    my $winner = @won ? 'upd_' . ($won[0] + 1) : '?';
    is($env->email_owner('acme', 'target@example.com'), $winner, 'index points at the winner');
    my @kept = grep { ($R->hget("sd:{acme}:c:upd_$_", 'e') // '') eq "upd$_\@example.com" } 1 .. 50;
    is(scalar @kept, 49, 'the 49 losers keep their email');
    $env->invariants_ok('acme', 'invariants after the update race');
}

# ---- 30 parallel upserts of one externalId with different emails
{
    my @res = $env->parallel([ map { req('same', { email => "same$_\@example.com", name => "S $_" }) } 1 .. 30 ],
                             timeout => 10);
    is(scalar(grep { $_->{status} == 200 } @res), 30, 'one externalId, 30 emails: all 200')
        or diag join ' ', map { $_->{status} } @res;
    is(scalar(grep { was_created($_) } @res), 1, 'exactly one wasCreated');
    my %idx = %{ $env->email_index('acme') };
    my @for_same = grep { $idx{$_} eq 'same' } keys %idx;
    is(scalar @for_same, 1, 'exactly one index entry for the customer') or diag "@for_same";
    $env->invariants_ok('acme', 'invariants after the same-id race');
}

# ---- swapping emails in parallel, repeatedly
{
    envelope_ok(patch($key, 'sx', { email => 'sx@example.com', name => 'X' }), 200, undef, 'sx');
    envelope_ok(patch($key, 'sy', { email => 'sy@example.com', name => 'Y' }), 200, undef, 'sy');
    my $bad = 0;
    for my $round (1 .. 10) {
        my $ex = $R->hget('sd:{acme}:c:sx', 'e');
        my $ey = $R->hget('sd:{acme}:c:sy', 'e');
        my @res = $env->parallel([ req('sx', { email => $ey }), req('sy', { email => $ex }),
                                   req('sx', { email => "sx$round\@example.com" }),
                                   req('sy', { email => "sy$round\@example.com" }) ]);
        # which of the four wins is a race: each is a 200 or the 409 envelope
        $bad++ for grep { SupportDesk::Test::_envelope_problems($_, 200) && !is_409($_) } @res;
    }
    is($bad, 0, 'email swaps answer the 200 envelope or the 409 envelope only');
    $env->invariants_ok('acme', 'invariants after swapping emails');
}

done_testing;
