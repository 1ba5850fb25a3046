# How stored strings and times come back in answers: every string escaped as
# JSON needs (quotes and backslashes anywhere in a string, on both sides of
# the eight-byte steps of the escaper; control characters and DEL of values
# written to Redis directly, by another writer), UTF-8 passed through, and
# createdAt/updatedAt from the stored seconds (days before and after each
# other, leap days, a malformed value as the epoch), the same in GET and in
# the list.
# Configuration: the harness's default configuration.
use strict;
use warnings;
use utf8;
use Test::More;
use POSIX ();
use SupportDesk::Test qw(envelope_ok json_decode);

my $env = SupportDesk::Test->new;
my $key = $env->create_key('render', 'json render tests');
my $R = $env->redis;
my $r;

sub get_customer { my ($id, @o) = @_; $env->api('GET', $id, $key, undef, @o) }
sub listed {
    my $res = $env->api('GET', '/api/v1/customers?limit=100', $key, undef, @_);
    envelope_ok($res, 200, undef, 'list');
    return { map { $_->{externalId} => $_ } @{ $res->{json}{data}{customers} || [] } };
}
sub iso { POSIX::strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }

# ---- names with '"' and '\' at every offset of a 19-character name
my %sent;
for my $i (0 .. 18) {
    for my $ch ('"', '\\') {
        my $name = 'abcdefghijklmnopqrs';
        substr($name, $i, 1) = $ch;
        my $id = sprintf('q%02d%s', $i, $ch eq '"' ? 'q' : 'b');
        $r = $env->api('PATCH', $id, $key, { email => "$id\@example.com", name => $name });
        envelope_ok($r, 200, undef, "create $id");
        is($r->{json}{data}{customer}{name}, $name, "$id: the upsert answers the name");
        $sent{$id} = $name;
    }
}
# a name of only specials, one that needs nothing, UTF-8 of 2 to 4 bytes
# across the steps, and lengths 1, 7, 8, 9 and 16
for my $case (['all', '"\\"\\"\\"\\"\\"\\'], ['plain', 'Plain Name'],
              ['utf8', "Zoë Ünal 中文 \x{1F600} \"x\" \x{1F600}\\"],
              ['len1', '"'], ['len7', 'abcdef"'], ['len8', 'abcdefg"'],
              ['len9', 'abcdefgh"'], ['len16', 'abcdefghijklmno\\'])
{
    my ($id, $name) = @$case;
    $r = $env->api('PATCH', $id, $key, { email => "$id\@example.com", name => $name });
    envelope_ok($r, 200, undef, "create $id");
    $sent{$id} = $name;
}

my $list = listed();
for my $id (sort keys %sent) {
    $r = get_customer($id);
    envelope_ok($r, 200, undef, "GET $id");
    is($r->{json}{data}{customer}{name}, $sent{$id}, "GET $id: the name as sent");
    is($list->{$id}{name}, $sent{$id}, "list $id: the name as sent");
}

# ---- values written by another writer: every control character and DEL
$r = $env->api('PATCH', 'ctl', $key, { email => 'ctl@example.com', name => 'Control',
                                       phone => '+1 555 0100' });
envelope_ok($r, 200, undef, 'create ctl');
my $controls = join '', map { chr } 1 .. 0x1f, 0x7f;
my $name = "x$controls\"\\y";
$R->hset('sd:{render}:c:ctl', 'n', $name);
$R->hset('sd:{render}:c:ctl', 'p', "tab\there");
# what no API write could have stored: left out of the OpenAPI check
my @unrec = (unrecorded => 'control characters written to Redis directly');
$r = get_customer('ctl', @unrec);
envelope_ok($r, 200, undef, 'GET a customer with control characters stored');
is($r->{json}{data}{customer}{name}, $name, '... every control character comes back');
is($r->{json}{data}{customer}{phone}, "tab\there", '... the phone too');
like($r->{body}, qr/\\u0001\\u0002/, '... as \u00XX');
like($r->{body}, qr/\\u001F/, '... with upper-case hex digits, as nginx writes them');
like($r->{body}, qr/\\b\\t\\n\\u000B\\f\\r/, '... and the short escapes \b \t \n \f \r');
like($r->{body}, qr/\x7f\\"\\\\y/, '... DEL as it is, then \" and \\\\');
$list = listed(@unrec);
is($list->{ctl}{name}, $name, 'list: every control character comes back');
envelope_ok($env->api('DELETE', 'ctl', $key), 200, undef, 'delete ctl');

# ---- times: the stored seconds as ISO 8601, whatever day came before
my @times = (0, 86399, 86400, 951782400 + 86399, 951868800, 1700000000,
             4102444799, 1700000000 - 1, 0);
for my $i (0 .. $#times - 1) {
    $R->hset('sd:{render}:c:plain', 'c', $times[$i]);
    $R->hset('sd:{render}:c:plain', 'u', $times[$i + 1]);
    $r = get_customer('plain');
    envelope_ok($r, 200, undef, "GET with createdAt $times[$i]");
    is($r->{json}{data}{customer}{createdAt}, iso($times[$i]), "createdAt of $times[$i]: " . iso($times[$i]));
    is($r->{json}{data}{customer}{updatedAt}, iso($times[$i + 1]), "updatedAt of $times[$i + 1]: " . iso($times[$i + 1]));
    $list = listed();
    is($list->{plain}{createdAt}, iso($times[$i]), "list: createdAt of $times[$i]");
    is($list->{plain}{updatedAt}, iso($times[$i + 1]), "list: updatedAt of $times[$i + 1]");
}
# a customer never updated stores no u: its updatedAt is its createdAt
$R->hset('sd:{render}:c:plain', 'c', 1700000000);
$R->hdel('sd:{render}:c:plain', 'u');
$r = get_customer('plain');
envelope_ok($r, 200, undef, 'GET of a hash without u');
is($r->{json}{data}{customer}{updatedAt}, iso(1700000000), '... updatedAt is createdAt');
$list = listed();
is($list->{plain}{updatedAt}, iso(1700000000), 'list: updatedAt is createdAt');
for my $bad ('abc', '-5', '12x', '1' x 19) {
    $R->hset('sd:{render}:c:plain', 'c', $bad);
    $r = get_customer('plain');
    envelope_ok($r, 200, undef, "GET with a stored createdAt of '$bad'");
    is($r->{json}{data}{customer}{createdAt}, '1970-01-01T00:00:00Z', "'$bad' is the epoch");
}

done_testing;
