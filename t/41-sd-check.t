# redis/sd-check, the consistency checker: consistent data passes, and each
# kind of broken invariant is found (a checker never seen failing proves
# nothing).  Each corruption is made on a copy of a clean app, checked, and
# undone.  sd-check -c: against a Redis that is no cluster (exit 2); in
# cluster mode (SD_CLUSTER=1) through every node, and not while the app's
# slot is half moved (exit 2).
# Configuration: the harness's default configuration.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test;

my $env = SupportDesk::Test->new();
my $R = $env->redis;
my $key = $env->create_key('acme');
my $CHECK = SupportDesk::Test::repo_root() . '/redis/sd-check';
# -p <port>, or in cluster mode -c -p <a master's port>
my @conn = $env->sd_check_args;

sub check {
    my (@apps) = @_;
    my $out = `'$CHECK' @conn @apps 2>&1`;
    return ($? >> 8, $out);
}

# usage and connection errors
my ($rc, $out) = check();
is($rc, 2, 'no app: usage error (2)');
($rc, $out) = check('bad{app}');
is($rc, 2, 'invalid app id: usage error (2)');
$out = `'$CHECK' -p 1 acme 2>&1`;
is($? >> 8, 2, 'Redis unreachable: exit 2') or diag $out;
$out = `'$CHECK' -c -p 1 acme 2>&1`;
is($? >> 8, 2, '-c, Redis unreachable: exit 2') or diag $out;
if (!$env->cluster) {
    $out = `'$CHECK' -c @conn acme 2>&1`;
    is($? >> 8, 2, '-c on a Redis that is not a cluster: exit 2') or diag $out;
    like($out, qr/cluster support disabled/, '... saying so') or diag $out;
}

# an empty app is consistent
($rc, $out) = check('acme');
is($rc, 0, 'an app without data is consistent') or diag $out;

for my $i (1 .. 5) {
    is($env->api('PATCH', "u$i", $key, { email => "U$i\@Example.com", name => "U $i" })->{status},
        200, "fixture u$i");
}
$env->api('PATCH', 'w{x}*:y', $key, { email => 'odd@example.com', name => 'Odd' });
($rc, $out) = check('acme');
is($rc, 0, 'data written through the API is consistent') or diag $out;
like($out, qr/6 customers, 6 email entries, 6 order members, 0 problems/, 'summary counts') or diag $out;
$out = `'$CHECK' @conn --all 2>&1`;
is($? >> 8, 0, '--all: consistent') or diag $out;
like($out, qr/app acme:/, '--all finds acme') or diag $out;

# a cluster: any node will do, the app is checked on the master of its slot
if (my $c = $env->cluster) {
    my $owner = $c->master_of_key('sd:{acme}:seq');
    for my $n ($c->masters, $c->replicas) {
        my ($p) = $n =~ /(\d+)\z/;
        $out = `'$CHECK' -c -p $p acme 2>&1`;
        ok($? >> 8 == 0 && $out =~ /6 customers, 6 email entries, 6 order members, 0 problems/,
           "-c through node $n" . ($n eq $owner ? ' (the owner)' : '') . ': acme is consistent')
            or diag $out;
    }
}

# the order's layout: sd:{acme}:order:<s div 128> HASH s -> extId
sub s_of { $R->hget("sd:{acme}:c:$_[0]", 's') }
sub bucket_of { 'sd:{acme}:order:' . int(s_of($_[0]) / 128) }
# the email index's layout: sd:{acme}:emails:<b> HASH lowercase email -> extId
sub eb { $env->email_bucket_key('acme', $_[0]) }

# corruption => (what it breaks, redis commands to break, pattern expected)
my @cases = (
    ['email index entry points at a missing customer',
     [['HSET', eb('ghost@example.com'), 'ghost@example.com', 'ghost']], qr/points at a missing customer/],
    ['email index entry points at the wrong customer',
     [['HSET', eb('u1@example.com'), 'u1@example.com', 'u2']], qr/but that customer's email is/],
    ['customer without an index entry',
     [['HDEL', eb('u3@example.com'), 'u3@example.com']], qr/'u3' has 0 email index entries/],
    ['customer indexed twice',
     [['HSET', eb('alias@example.com'), 'alias@example.com', 'u4']], qr/'u4' has 2 email index entries/],
    ['index entry not lowercase',
     [['HDEL', eb('u5@example.com'), 'u5@example.com'], ['HSET', eb('U5@example.com'), 'U5@example.com', 'u5']],
     qr/is not lowercase/],
    ['index entry in the wrong bucket',
     [['HDEL', eb('u1@example.com'), 'u1@example.com'], ['HSET', 'sd:{acme}:emails:5', 'u1@example.com', 'u1']],
     qr/'u1\@example.com' is in bucket 5, not 0/],
    ['index bucket past the bucket count',
     [['HDEL', eb('u1@example.com'), 'u1@example.com'], ['HSET', 'sd:{acme}:emails:5', 'u1@example.com', 'u1']],
     qr/emails:5' is past the 1 buckets/],
    ['index entry in a bucket and in the first layout\'s hash',
     [['HSET', 'sd:{acme}:emails', 'u2@example.com', 'u2'], ['SET', 'sd:{acme}:emails:n', '-1']],
     qr/'u2\@example.com' is in a bucket and in/],
    ['the first layout\'s hash with a bucket count that says it is empty',
     [['HDEL', eb('u2@example.com'), 'u2@example.com'], ['HSET', 'sd:{acme}:emails', 'u2@example.com', 'u2']],
     qr/emails has entries but sd:\{acme\}:emails:n says it has none/],
    ['bucket count not a number',
     [['SET', 'sd:{acme}:emails:n', 'x']], qr/emails:n is 'x', not a bucket count/],
    ['customer missing from the order',
     [['HDEL', bucket_of('u1'), s_of('u1')]], qr/'u1' is not in the order/],
    ['order entry with another s',
     [['HDEL', bucket_of('u2'), s_of('u2')], ['HSET', 'sd:{acme}:order:7', '999', 'u2']],
     qr/'u2' has s=\d+ but order score 999/],
    ['order entry in the wrong bucket',
     [['HDEL', bucket_of('u3'), s_of('u3')], ['HSET', 'sd:{acme}:order:5', s_of('u3'), 'u3']],
     qr/\('u3'\) is in bucket 5, not 0/],
    ['customer in the order twice',
     [['HSET', 'sd:{acme}:order:0', '100', 'u1']], qr/'u1' is in the order twice/],
    ['order member without a hash',
     [['HSET', 'sd:{acme}:order:7', '1000', 'nobody']], qr/order member 'nobody' has no customer hash/],
    ['customer count wrong',
     [['SET', 'sd:{acme}:order:n', '99']], qr/order:n='99' but the app has 6 customers/],
    ['notes without a customer',
     [['HSET', 'sd:{acme}:notes:nobody', '1', '0:x']], qr/notes:nobody' exists but customer 'nobody' does not/],
    ['notification settings without a customer',
     [['HSET', 'sd:{acme}:notif:nobody', 'newTicket', '0']], qr/notif:nobody' exists but customer 'nobody' does not/],
    ['customer lacking a field',
     [['HDEL', 'sd:{acme}:c:u3', 'n']], qr/'u3' lacks field 'n'/],
    ['an updated customer without u',
     [['HSET', 'sd:{acme}:c:u3', 'v', '2'], ['HDEL', 'sd:{acme}:c:u3', 'u']], qr/'u3' has no u but v='2'/],
    ['two customers with one s',
     [['HSET', 'sd:{acme}:c:u4', 's', '1']], qr/share s=1/],
    ['seq below the largest s',
     [['SET', 'sd:{acme}:seq', '1']], qr/seq='1' is below the largest s/],
    ['customer key of the wrong type',
     [['DEL', 'sd:{acme}:c:u5'], ['SET', 'sd:{acme}:c:u5', 'x']], qr/is a string, not a hash/],
);
for my $c (@cases) {
    my ($name, $cmds, $want) = @$c;
    my $dump = { map { $_ => $R->dump($_) } SupportDesk::Invariants::scan_keys($R, 'sd:{acme}:*') };
    for my $cmd (@$cmds) { my ($m, @a) = @$cmd; $R->$m(@a) }
    ($rc, $out) = check('acme');
    is($rc, 1, "$name: exit 1") or diag $out;
    like($out, $want, "$name: reported") or diag $out;
    # restore
    $R->del($_) for SupportDesk::Invariants::scan_keys($R, 'sd:{acme}:*');
    $R->restore($_, 0, $dump->{$_}) for keys %$dump;
    ($rc, $out) = check('acme');
    is($rc, 0, "$name: consistent again once restored") or diag $out;
}

# an index of the first layout (one hash, sd:{app}:emails), with the
# bucket count negative while it has entries: consistent, half moved or not
{
    my $dump = { map { $_ => $R->dump($_) } SupportDesk::Invariants::scan_keys($R, 'sd:{acme}:*') };
    $R->hdel(eb('u3@example.com'), 'u3@example.com');
    $R->hset('sd:{acme}:emails', 'u3@example.com', 'u3');
    $R->set('sd:{acme}:emails:n', '-1');
    ($rc, $out) = check('acme');
    is($rc, 0, "an entry in the first layout's hash: consistent") or diag $out;
    like($out, qr/6 customers, 6 email entries/, '... and counted') or diag $out;
    $R->del($_) for SupportDesk::Invariants::scan_keys($R, 'sd:{acme}:*');
    $R->restore($_, 0, $dump->{$_}) for keys %$dump;
}

# the other app's problems are not this app's
$R->hset('sd:{other}:emails:0', 'x@example.com', 'ghost');
($rc, $out) = check('acme');
is($rc, 0, "another app's broken data does not fail this app") or diag $out;
($rc, $out) = check('acme', 'other');
is($rc, 1, 'but checking both apps finds it') or diag $out;
like($out, qr/^other: emails entry/m, 'problems are prefixed with their app') or diag $out;

# a cluster: while the app's slot moves its keys are on two masters, and
# sd-check says it cannot check it (exit 2) rather than report half an app
if (my $c = $env->cluster) {
    my $slot = SupportDesk::Cluster::keyslot('sd:{acme}:seq');
    my $from = $c->master_of_slot($slot);
    my ($to) = grep { $_ ne $from } $c->masters;
    $c->begin_migration($slot, $to);
    $c->migrate_keys($slot, 3);
    ($rc, $out) = check('acme');
    is($rc, 2, 'acme\'s slot half moved: exit 2') or diag $out;
    like($out, qr/slot $slot is being migrated/, '... saying why') or diag $out;
    $c->migrate_keys($slot);
    $c->end_migration($slot);
    ($rc, $out) = check('acme');
    is($rc, 0, 'moved: acme is consistent on its new master') or diag $out;
    like($out, qr/6 customers, 6 email entries, 6 order members, 0 problems/, '... all of it') or diag $out;
}

done_testing;
