# The email index in buckets (redis/lib_customer.lua): it grows by one
# bucket each 40 customers, every bucket stays a listpack, every email is
# found in whichever bucket it landed (409 for another externalId, in any
# case), deletes and email changes free theirs; and an index of the first
# layout (one hash sd:{app}:emails, written by gateways before the buckets)
# is read as it is and emptied into buckets, 8 entries a create.
# Configuration: the harness's default configuration.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test;

my $env = SupportDesk::Test->new();
my $R = $env->redis;
my $key = $env->create_key('acme');
my $oldkey = $env->create_key('old');

sub batch {
    my ($k, @customers) = @_;
    return $env->api('PATCH', '/api/v1/customers', $k, { customers => \@customers },
                     timeout => 30);
}
sub created_all {
    my ($r, $n, $name) = @_;
    my $res = $r->{json}{data}{results} // [];
    my @bad = grep { !($_->{success} && $_->{wasCreated}) } @$res;
    ok($r->{status} == 200 && @$res == $n && !@bad, $name)
        or diag "status $r->{status}, " . scalar(@$res) . ' results, '
            . scalar(@bad) . ' not created: ' . substr($r->{body} // '', 0, 300);
}
sub patch { my ($k, $ext, $body) = @_; $env->api('PATCH', $ext, $k, $body) }
sub code_of { $_[0]{json}{error}{code} // '' }
# the bucket count linear hashing reaches after $n creates
sub buckets_after {
    my ($n) = @_;
    my $nb = 1;
    for my $c (1 .. $n) { $nb++ if $c > 40 * $nb }
    return $nb;
}

# ---------------------------------------------------------------- growth
my $N = 300;
for my $part (0 .. 2) {
    created_all(batch($key, map { { externalId => "c$_", email => "Person.$_\@Example.com",
                                    name => "Person $_" } } $part * 100 + 1 .. $part * 100 + 100),
                100, "100 customers created (part " . ($part + 1) . ')');
}
my $nb = buckets_after($N);
is($nb, 8, '300 customers make 8 buckets');
is($R->get('sd:{acme}:emails:n'), $nb, 'sd:{acme}:emails:n counts the buckets');
my @buckets = grep { /:emails:[0-9]+\z/ } SupportDesk::Invariants::scan_keys($R, 'sd:{acme}:emails:*');
is(scalar @buckets, $nb, "$nb bucket keys") or diag "@buckets";
is(scalar(grep { ($R->object_encoding($_) // '') ne 'listpack' } @buckets), 0,
   'every bucket is a listpack');
my @sizes = map { $R->hlen($_) } @buckets;
my $sum = 0;
$sum += $_ for @sizes;
is($sum, $N, 'the buckets hold every email once');
ok(!grep({ $_ > 128 } @sizes), "no bucket over a listpack's 128 entries (@sizes)");
is($R->exists('sd:{acme}:emails'), 0, 'no one-hash index');
my $idx = $env->email_index('acme');
is(scalar(grep { ($idx->{"person.$_\@example.com"} // '') ne "c$_" } 1 .. $N), 0,
   'every lowercase email points at its customer');
$env->invariants_ok('acme', 'invariants after growing');

# every email is found, in whatever case, by another externalId
my @taken = grep { $_ % 7 == 0 } 1 .. $N;
my @res = map { patch($key, "other$_", { email => "PERSON.$_\@EXAMPLE.COM", name => 'X' }) } @taken;
is(scalar(grep { $_->{status} == 409 && code_of($_) eq 'CUSTOMER_EMAIL_EXISTS' } @res), scalar @taken,
   scalar(@taken) . ' taken emails, in upper case, from every bucket: 409 CUSTOMER_EMAIL_EXISTS');
is($R->exists(map { "sd:{acme}:c:other$_" } @taken), 0, '... and no customer created');

# an update that keeps its own email (another case) is no conflict
is(patch($key, 'c5', { email => 'PERSON.5@example.com' })->{status}, 200, 'own email in another case: 200');

# deletes free their emails, in their buckets
my @gone = grep { $_ % 3 == 0 } 1 .. $N;
is(scalar(grep { $env->api('DELETE', "c$_", $key)->{status} == 200 } @gone), scalar @gone,
   scalar(@gone) . ' customers deleted');
$idx = $env->email_index('acme');
is(scalar(grep { exists $idx->{"person.$_\@example.com"} } @gone), 0, 'their emails left the index');
is(scalar(keys %$idx), $N - @gone, 'the others stay');
is($R->get('sd:{acme}:emails:n'), $nb, 'deletes do not merge buckets');
created_all(batch($key, map { { externalId => "n$_", email => "person.$_\@example.com", name => "N $_" } }
                  @gone[0 .. 19]), 20, 'a deleted customer\'s email can be taken by another');

# an email change frees the old one and takes the new one
is(patch($key, 'c1', { email => 'moved.1@example.com' })->{status}, 200, 'c1 changes its email');
is($env->email_owner('acme', 'moved.1@example.com'), 'c1', 'the new email points at c1');
is($env->email_owner('acme', 'person.1@example.com'), undef, 'the old one is gone');
is(patch($key, 'n3', { email => 'Moved.1@example.com' })->{status}, 409, 'the new one is taken');
is(patch($key, 'c2', { email => 'person.1@example.com' })->{status}, 200, 'the old one is free');
$env->invariants_ok('acme', 'invariants after deletes and changes');

# growth continues from where the deletes left the count
my $count = $env->customer_count('acme');
created_all(batch($key, map { { externalId => "g$_", email => "g$_\@example.com", name => "G $_" } } 1 .. 100),
            100, '100 more customers');
my $want = $nb;
for my $c ($count + 1 .. $count + 100) { $want++ if $c > 40 * $want }
is($R->get('sd:{acme}:emails:n'), $want, "the buckets grow with the customer count ($want)");
$env->invariants_ok('acme', 'invariants after growing again');

# ---------------------------------------------------------------- the first layout
# 100 customers of app "old" written as a gateway before the buckets wrote
# them: the email index is one hash, there is no sd:{old}:emails:n
my $lua = <<'LUA';
for i = 1, 100 do
    local ext, s = 'o' .. i, tostring(i)
    redis.call('HSET', 'sd:{old}:c:' .. ext, 's', s, 'e', 'Old.' .. i .. '@Example.com',
               'n', 'Old ' .. i, 'c', '1700000000', 'u', '1700000000', 'v', '1')
    redis.call('HSET', 'sd:{old}:emails', 'old.' .. i .. '@example.com', ext)
    redis.call('HSET', 'sd:{old}:order:' .. math.floor(i / 128), s, ext)
end
redis.call('SET', 'sd:{old}:order:n', '100')
redis.call('SET', 'sd:{old}:seq', '100')
return 1
LUA
$R->eval($lua, 1, 'sd:{old}:seq');
$env->invariants_ok('old', 'the first layout is consistent as it is');
is(patch($oldkey, 'x1', { email => 'OLD.50@example.com', name => 'X' })->{status}, 409,
   "an email of the one hash is found: 409");
is($R->exists('sd:{old}:c:x1'), 0, '... nothing created');
is($R->hlen('sd:{old}:emails'), 100, '... nothing moved by a refused create');

# a create moves 8 entries of the one hash to buckets
is(patch($oldkey, 'x1', { email => 'x1@example.com', name => 'X 1' })->{status}, 200, 'a create');
is($R->hlen('sd:{old}:emails'), 92, '8 entries left the one hash');
# 101 customers past 40 a bucket: the create split bucket 0 as well
is($R->get('sd:{old}:emails:n'), -2, 'the bucket count is negative while it has entries');
$idx = $env->email_index('old');
is(scalar(grep { ($idx->{"old.$_\@example.com"} // '') eq "o$_" } 1 .. 100), 100,
   'every old email still points at its customer');
$env->invariants_ok('old', 'invariants with the index half moved');

# an update and a delete of customers still indexed in the one hash
my %old = $R->hgetall('sd:{old}:emails');
my ($upd, $del) = (sort values %old)[0, 1];
my ($upd_n) = $upd =~ /(\d+)/;
my ($del_n) = $del =~ /(\d+)/;
is(patch($oldkey, $upd, { email => "renamed.$upd_n\@example.com" })->{status}, 200,
   "$upd (in the one hash) changes its email");
is($R->hexists('sd:{old}:emails', "old.$upd_n\@example.com"), 0, '... its old entry left the one hash');
is($env->email_owner('old', "renamed.$upd_n\@example.com"), $upd, '... the new one is in a bucket');
is($env->api('DELETE', $del, $oldkey)->{status}, 200, "$del (in the one hash) deleted");
is($R->hexists('sd:{old}:emails', "old.$del_n\@example.com"), 0, '... its entry is gone');
is(patch($oldkey, 'x2', { email => "old.$del_n\@example.com", name => 'X 2' })->{status}, 200,
   '... and its email can be taken');
$env->invariants_ok('old', 'invariants after an update and a delete');

# the creates empty it
my $i = 3;
while ($R->exists('sd:{old}:emails') && $i < 40) {
    patch($oldkey, "x$i", { email => "x$i\@example.com", name => "X $i" });
    $i++;
}
is($R->exists('sd:{old}:emails'), 0, 'the one hash is emptied by the creates (' . ($i - 3) . ' more)');
ok($i - 3 <= 13, 'at 8 entries a create');
ok($R->get('sd:{old}:emails:n') > 0, 'the bucket count is positive once it is empty');
$idx = $env->email_index('old');
is(scalar(grep { ($idx->{"old.$_\@example.com"} // '') eq "o$_" } grep { $_ != $upd_n && $_ != $del_n } 1 .. 100),
   98, 'every old email points at its customer, from the buckets');
$env->invariants_ok('old', 'invariants once moved');
my $out = `'@{[ SupportDesk::Test::repo_root() ]}/redis/sd-check' @{[ $env->sd_check_args ]} acme old 2>&1`;
is($? >> 8, 0, 'sd-check: both apps consistent') or diag $out;

done_testing;
