# GET / PATCH /customers/{externalId}/notifications: defaults (all true),
# any subset of the three booleans, strict validation (other key or a
# non-boolean named in details), 404 CUSTOMER_NOT_FOUND, 401, 415, the Redis
# hash (newTicket/newComment/ticketReassigned "0"|"1"), deletion with the
# customer, tenant isolation.
# Configuration: the harness's default configuration.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(envelope_ok fields_ok json_encode json_decode);

my $env = SupportDesk::Test->new;
my $key   = $env->create_key('acme', 'notification tests');
my $other = $env->create_key('other', 'tenant isolation');
my $R = $env->redis;
my ($T, $F) = (JSON::PP::true, JSON::PP::false);
my @ALL = qw(newTicket newComment ticketReassigned);
my $r;

sub path { "/api/v1/customers/$_[0]/notifications" }
sub nget   { my ($ext, $k) = @_; $env->api('GET', path($ext), exists $_[1] ? $k : $key) }
sub npatch { my ($ext, $body, %o) = @_; my $k = exists $o{key} ? delete $o{key} : $key;
             $env->api('PATCH', path($ext), $k, $body, %o) }
sub settings_ok {
    my ($res, $want, $name) = @_;
    envelope_ok($res, 200, undef, $name) or return;
    is_deeply([keys %{ $res->{json}{data} }], ['notifications'], "$name: data is {notifications}");
    my $n = $res->{json}{data}{notifications} // {};
    my @notbool = grep { !JSON::PP::is_bool($n->{$_}) } keys %$n;
    ok(!@notbool, "$name: JSON booleans") or diag "@notbool";
    is_deeply({ map { $_ => ($n->{$_} ? 1 : 0) } keys %$n }, $want, "$name: settings");
}
sub refused { $env->refused(@_) }
sub stored { +{ $R->hgetall("sd:{$_[1]}:notif:$_[0]") } }

for my $c (['u1', $key], ['u2', $key], ['u1', $other]) {
    envelope_ok($env->api('PATCH', $c->[0], $c->[1], { email => "$c->[0]\@example.com", name => 'N' }),
                200, undef, "setup $c->[0]") or BAIL_OUT('setup');
}
my %on = map { $_ => 1 } @ALL;

# ---------------------------------------------------------------- GET defaults
my $snap = $env->snapshot;
settings_ok(nget('u1'), \%on, 'defaults: all true');
is_deeply($env->snapshot, $snap, 'GET changed nothing');

# ---------------------------------------------------------------- PATCH
settings_ok(npatch('u1', { newTicket => $F }), { %on, newTicket => 0 }, 'PATCH newTicket false');
is_deeply(stored('u1', 'acme'), { newTicket => '0' }, 'Redis: newTicket "0" (the rest default)')
    or diag json_encode(stored('u1', 'acme'));
settings_ok(nget('u1'), { %on, newTicket => 0 }, 'GET after PATCH');
settings_ok(npatch('u1', { newComment => $F, ticketReassigned => $F }), { newTicket => 0, newComment => 0, ticketReassigned => 0 },
            'PATCH two more: only those change');
is_deeply(stored('u1', 'acme'), { newTicket => '0', newComment => '0', ticketReassigned => '0' }, 'Redis: all "0"');
settings_ok(npatch('u1', { newTicket => $T, newComment => $T, ticketReassigned => $F }),
            { newTicket => 1, newComment => 1, ticketReassigned => 0 }, 'PATCH all three');
my %h = %{ stored('u1', 'acme') };
is($h{newTicket}, '1', 'Redis: newTicket "1"');
is($h{ticketReassigned}, '0', 'Redis: ticketReassigned "0"');
settings_ok(npatch('u1', { newTicket => $T }), { newTicket => 1, newComment => 1, ticketReassigned => 0 }, 'PATCH to the value it has');
$snap = $env->snapshot;
settings_ok(npatch('u1', {}), { newTicket => 1, newComment => 1, ticketReassigned => 0 }, 'PATCH {} (the empty subset)');
is_deeply($env->snapshot, $snap, 'PATCH {} changed nothing');
settings_ok(nget('u2'), \%on, 'another customer keeps the defaults');
settings_ok(npatch('u2', '{"newComment":false}', headers => { 'Content-Type' => 'application/json; charset=utf-8' }),
            { %on, newComment => 0 }, 'Content-Type with charset');

# ---------------------------------------------------------------- errors
my $BOOL = 'must be true or false';
my $UNKNOWN = 'is not a known setting';
refused('a string "false"', 400, 'VALIDATION_ERROR', sub { npatch('u1', { newTicket => 'false' }) }, [newTicket => $BOOL]);
refused('newTicket 0', 400, 'VALIDATION_ERROR', sub { npatch('u1', { newTicket => 0 }) }, [newTicket => $BOOL]);
refused('newComment 1', 400, 'VALIDATION_ERROR', sub { npatch('u1', { newComment => 1 }) }, [newComment => $BOOL]);
refused('ticketReassigned null', 400, 'VALIDATION_ERROR', sub { npatch('u1', { ticketReassigned => undef }) },
        [ticketReassigned => $BOOL]);
refused('an object', 400, 'VALIDATION_ERROR', sub { npatch('u1', { newTicket => { on => $T } }) }, [newTicket => $BOOL]);
refused('unknown key', 400, 'VALIDATION_ERROR', sub { npatch('u1', { newTickets => $T }) }, [newTickets => $UNKNOWN]);
refused('wrong case', 400, 'VALIDATION_ERROR', sub { npatch('u1', { NewTicket => $T }) }, [NewTicket => $UNKNOWN]);
refused('one good, one unknown: nothing changes', 400, 'VALIDATION_ERROR',
        sub { npatch('u1', { newTicket => $F, email => $F }) }, [email => $UNKNOWN]);
refused('every violation named, in body order', 400, 'VALIDATION_ERROR',
        sub { npatch('u1', '{"newTicket":"yes","newComment":0,"foo":true}') },
        [newTicket => $BOOL], [newComment => $BOOL], [foo => $UNKNOWN], { ordered => 1 });
refused('malformed JSON', 400, 'INVALID_JSON', sub { npatch('u1', '{"newTicket":') }, { message => 'body is not valid JSON' });
refused('array body', 400, 'INVALID_JSON', sub { npatch('u1', '[true]') }, { message => 'body must be a JSON object' });
refused('duplicate key', 400, 'INVALID_JSON', sub { npatch('u1', '{"newTicket":true,"newTicket":false}') },
        { message => 'body has a duplicate key' });
refused('text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE', sub { npatch('u1', { newTicket => $F }, headers => { 'Content-Type' => 'text/plain' }) });
refused('PATCH without a key', 401, 'UNAUTHORIZED', sub { npatch('u1', { newTicket => $F }, key => undef) });
refused('PATCH with an unknown key', 401, 'UNAUTHORIZED', sub { npatch('u1', { newTicket => $F }, key => 'sdk_nope') });
refused('GET without a key', 401, 'UNAUTHORIZED', sub { nget('u1', undef) });
refused('GET with an unknown key', 401, 'UNAUTHORIZED', sub { nget('u1', 'sdk_nope') });
refused('GET unknown customer', 404, 'CUSTOMER_NOT_FOUND', sub { nget('nobody') });
refused('PATCH unknown customer: no settings created', 404, 'CUSTOMER_NOT_FOUND', sub { npatch('nobody', { newTicket => $F }) });
ok(!$R->exists('sd:{acme}:notif:nobody'), 'Redis: no notif key for an unknown customer');
refused('PATCH unknown customer with a bad body: 400 first', 400, 'VALIDATION_ERROR',
        sub { npatch('nobody', { newTicket => 'x' }) }, [newTicket => $BOOL]);
refused('externalId with %2F', 400, 'VALIDATION_ERROR', sub { nget('a%2Fb') }, [externalId => "must not contain '/'"]);
refused('body over 64k', 413, 'PAYLOAD_TOO_LARGE', sub { npatch('u1', '{"newTicket":true}' . (' ' x 65536)) },
        { message => 'body is over the limit of 65536 bytes' });
settings_ok(nget('u1'), { newTicket => 1, newComment => 1, ticketReassigned => 0 }, 'u1 as it was after all the refusals');

# ---------------------------------------------------------------- tenant isolation
{
    my $acme_before = $env->snapshot('sd:{acme}:*');
    settings_ok(nget('u1', $other), \%on, "the other app's u1 has its own settings (defaults)");
    settings_ok(npatch('u1', { newComment => $F }, key => $other), { %on, newComment => 0 }, 'the other app changes its own u1');
    is_deeply(stored('u1', 'other'), { newComment => '0' }, "Redis: the other app's notif hash");
    refused('the other app GETs an acme-only customer', 404, 'CUSTOMER_NOT_FOUND', sub { nget('u2', $other) });
    refused('the other app PATCHes an acme-only customer', 404, 'CUSTOMER_NOT_FOUND',
            sub { npatch('u2', { newTicket => $F }, key => $other) });
    is_deeply($env->snapshot('sd:{acme}:*'), $acme_before, "acme's keys unchanged by the other app");
    settings_ok(nget('u1'), { newTicket => 1, newComment => 1, ticketReassigned => 0 }, "acme's u1 unchanged");
}

# ---------------------------------------------------------------- deleted with the customer
envelope_ok($env->api('DELETE', 'u1', $key), 200, undef, 'DELETE u1');
ok(!$R->exists('sd:{acme}:notif:u1'), 'Redis: notif hash deleted with the customer');
ok($R->exists('sd:{other}:notif:u1'), "Redis: the other app's u1 settings stay");
refused('GET settings of the deleted customer', 404, 'CUSTOMER_NOT_FOUND', sub { nget('u1') });
envelope_ok($env->api('PATCH', 'u1', $key, { email => 'u1@example.com', name => 'Again' }), 200, undef, 'u1 created again');
settings_ok(nget('u1'), \%on, 'the new u1 has the defaults');

$env->invariants_ok($_) for qw(acme other);
done_testing;
