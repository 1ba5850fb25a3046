# redis/sd-key as an operator runs it, against this environment's storage
# (one Redis, or in cluster mode any node with -c): a key created serves
# requests of its app, list shows its hash prefix, app and name (never the
# key), revoke (by key or by hash prefix) stops it within the key cache's
# ttl; bad input is refused with a message and exit status 1.
# Configuration: http{} supportdesk_key_cache_ttl 1s,
# supportdesk_key_cache_negative_ttl 1s.
use strict;
use warnings;
use Test::More;
use POSIX ();
use SupportDesk::Test qw(envelope_ok wait_until repo_root);

my $env = SupportDesk::Test->new(
    http_conf => 'supportdesk_key_cache_ttl 1s; supportdesk_key_cache_negative_ttl 1s;',
);
my $sdkey = repo_root() . '/redis/sd-key';
my @conn = $env->sd_check_args;    # -p <port>, or -c -p <a node's port>

# runs sd-key, returns (exit status, stdout, stderr)
sub sd_key {
    my @args = @_;
    my $dir = $env->tmp;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', "$dir/sdkey.out" or die;
        open STDERR, '>', "$dir/sdkey.err" or die;
        exec $sdkey, @conn, @args or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $rc = $? >> 8;
    my ($out, $err) = map { local $/; open my $f, '<', "$dir/sdkey.$_" or die; scalar <$f> } qw(out err);
    return ($rc, $out, $err);
}

my ($rc, $out, $err) = sd_key('create', 'acme', 'acme production');
is($rc, 0, 'create: exit 0') or diag $err;
chomp(my $key = $out);
like($key, qr/^sdk_[0-9a-f]{64}\z/, 'create: prints the key, and only it');
envelope_ok($env->api('PATCH', 'k1', $key, { email => 'k1@acme.com', name => 'K One' }), 200, undef,
            'the new key serves its app');
is(($env->customers_of('acme'))[0]{k1}{n}, 'K One', '... the customer is stored in its app');

($rc, $out) = sd_key('create', 'other');
is($rc, 0, 'create without a name: exit 0');
chomp(my $other = $out);
envelope_ok($env->api('GET', 'k1', $other), 404, 'CUSTOMER_NOT_FOUND', 'a key of another app does not see acme\'s customer');

($rc, $out) = sd_key('list');
is($rc, 0, 'list: exit 0');
my @rows = grep { !/^HASH/ } split /\n/, $out;
is(scalar @rows, 2, 'list: both keys') or diag $out;
my ($acme_row) = grep { /\sacme\s/ } @rows;
like($acme_row // '', qr/^[0-9a-f]{16}\.\.\s+acme\s+acme production$/, 'list: hash prefix, app, name');
unlike($out, qr/sdk_/, 'list never shows a key');
($rc, $out) = sd_key('list', 'other');
is(scalar(grep { !/^HASH/ } split /\n/, $out), 1, 'list <app>: only that app\'s keys');

($rc, $out, $err) = sd_key('revoke', $key);
is($rc, 0, 'revoke <key>: exit 0') or diag $err;
ok(wait_until(sub { $env->api('GET', 'k1', $key)->{status} == 401 }, 5, 0.1),
   'a revoked key is refused (401) within the cache ttl');
my ($hash) = $acme_row =~ /^([0-9a-f]{16})/;
($rc, undef, $err) = sd_key('revoke', '--hash', $hash);
is($rc, 1, 'revoke --hash of a key already revoked: exit 1');
like($err, qr/no key hash starts with $hash/, '... saying so');

my ($other_row) = grep { /\sother\s/ } @rows;
my ($ohash) = ($other_row // '') =~ /^([0-9a-f]{16})/;
($rc, undef, $err) = sd_key('revoke', '--hash', $ohash);
is($rc, 0, 'revoke --hash <prefix>: exit 0') or diag $err;
ok(wait_until(sub { $env->api('GET', 'k1', $other)->{status} == 401 }, 5, 0.1),
   '... that key is refused too');
($rc, $out) = sd_key('list');
is(scalar(grep { !/^HASH/ } split /\n/, $out), 0, 'list: no key left');

# bad input: exit 1 and a message, nothing written
my $before = $env->snapshot('sd:*');
for my $bad ([['create', 'bad app!'], qr/bad app id/], [['create'], qr/usage: sd-key create/],
             [['create', 'acme', "a\x01b"], qr/bad name/], [['revoke', '--hash', 'xyz'], qr/bad hash prefix/],
             [['revoke', 'sdk_nope'], qr/no such key/]) {
    my ($args, $re) = @$bad;
    ($rc, undef, $err) = sd_key(@$args);
    is($rc, 1, "sd-key @$args: exit 1");
    like($err, $re, "... $re");
}
is_deeply($env->snapshot('sd:*'), $before, 'bad input wrote nothing');
if ($env->cluster) {
    ($rc, undef, $err) = sd_key('-n', '1', 'list');
    is($rc, 1, 'cluster: -n 1 refused');
    like($err, qr/only database 0/, '... a cluster has only database 0');
}

done_testing;
