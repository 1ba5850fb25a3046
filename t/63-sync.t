# redis/sd-sync, the example consumer of the change feed: its copy of an
# app matches what the API answers after creates, updates, batches, a
# bulk-update job, notes, settings and deletes; when the feed was trimmed
# past its cursor (410) it resynchronises and matches again.
# Configuration: the harness's default; for the 410 a second environment
# with supportdesk_events_max_count 10 and Redis's stream-node-max-entries 4.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(envelope_ok json_decode wait_until repo_root pct);

my $sync = repo_root() . '/redis/sd-sync';

# the app as the API shows it, in sd-sync's copy format
sub api_state {
    my ($env, $key) = @_;
    my ($list) = $env->follow_pages('/api/v1/customers?limit=100', $key);
    my %c;
    for my $cu (@$list) {
        my $x = pct($cu->{externalId});
        my ($notes) = $env->follow_pages("/api/v1/customers/$x/notes?limit=100", $key, field => 'notes');
        my $n = $env->api('GET', "/api/v1/customers/$x/notifications", $key)->{json}{data}{notifications};
        $c{ $cu->{externalId} } = { customer => $cu, notes => { map { $_->{id} => $_ } @$notes },
                                    notifications => $n };
    }
    return \%c;
}

sub run_sync {
    my ($env, $key, $copy) = @_;
    my $out = `$^X $sync --url http://127.0.0.1:@{[ $env->port ]}/api/v1 --key $key --copy $copy --once 2>&1`;
    is($?, 0, 'sd-sync --once exits 0') or diag $out;
    open my $fh, '<', $copy or return ({}, $out);
    local $/;
    return (json_decode(<$fh>), $out);
}

sub copy_ok {
    my ($env, $key, $copy, $name) = @_;
    my ($got, $out) = run_sync($env, $key, $copy);
    is_deeply($got->{customers}, api_state($env, $key), "$name: the copy is the app as the API shows it");
    return $out;
}

my $env = SupportDesk::Test->new;
my $key = $env->create_key('acme');
my $copy = $env->tmp . '/acme.json';

for my $i (1 .. 5) {
    envelope_ok($env->api('PATCH', "s$i", $key, { email => "s$i\@acme.com", name => "S $i", metadata => { i => $i } }),
                200, undef, "create s$i");
}
my $out = copy_ok($env, $key, $copy, 'first run');
like($out, qr/resynchronising/, 'first run: it copies the app, then follows the feed');

envelope_ok($env->api('PATCH', 's1', $key, { name => 'S One', phone => '+1 555' }), 200, undef, 'update s1');
envelope_ok($env->api('DELETE', 's2', $key), 200, undef, 'delete s2');
my $note = $env->api('POST', '/api/v1/customers/s3/notes', $key, { note => 'a <b>note</b>' })->{json}{data}{note};
$env->api('POST', '/api/v1/customers/s3/notes', $key, { note => 'another' });
$env->api('DELETE', "/api/v1/customers/s3/notes/$note->{id}", $key);
$env->api('PATCH', '/api/v1/customers/s4/notifications', $key, { newTicket => JSON::PP::false });
$env->api('PATCH', '/api/v1/customers', $key, { customers => [
    { externalId => 's6', email => 's6@acme.com', name => 'S 6' }, { externalId => 's5', name => 'S Five' } ] });
my $job = $env->api('POST', '/api/v1/customers/bulk-update', $key,
                    { filter => { name => 's' }, set => { metadata => { plan => 'gold' } } })->{json}{data}{jobId};
ok(wait_until(sub { ($env->api('GET', "/api/v1/jobs/$job", $key)->{json}{data}{job}{status} // '') eq 'done' }, 20, 0.1),
   'the job is done');
$out = copy_ok($env, $key, $copy, 'after updates, deletes, notes, settings, a batch, a job');
unlike($out, qr/resynchronising/, '... by following the feed alone');

# ---------------------------------------------------------------- 410: resynchronise
my $small = SupportDesk::Test->new(http_conf => 'supportdesk_events_max_count 10;',
                                   redis_args => ['--stream-node-max-entries', '4']);
my $k2 = $small->create_key('acme');
my $c2 = $small->tmp . '/acme.json';
$small->api('PATCH', 'r1', $k2, { email => 'r1@acme.com', name => 'R' });
copy_ok($small, $k2, $c2, 'small feed: first run');
for my $i (1 .. 40) {
    $small->api('PATCH', "r$i", $k2, { email => "r$i\@acme.com", name => "R $i" });
}
$small->api('DELETE', 'r1', $k2);
$out = copy_ok($small, $k2, $c2, 'the feed trimmed past its cursor');
like($out, qr/resynchronising/, '... it got 410 and resynchronised');

done_testing;
