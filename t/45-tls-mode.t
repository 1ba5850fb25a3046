# The harness's TLS mode (SD_TLS=1, make test-tls; on one Redis and, with
# SD_CLUSTER=1, on a Redis Cluster): every module connection is TLS,
# verified, to the TLS port of every server, and none to the plaintext port
# the harness keeps for its own client (CLIENT LIST of every server, and the
# sockets of the nginx processes). On a cluster: Redis 7.0 with tls-cluster
# yes gives a TLS client the TLS ports (CLUSTER SLOTS, MOVED) and a
# plaintext one the plaintext ports, which the module relies on; a slot
# moved (MOVED) and a master killed (its replica, a node no seed named,
# promoted): the module follows over TLS. A wrong name or CA: 503 on every
# server, Redis unchanged. The harness's own check (no nginx connection to
# a plaintext port, at cleanup) fails when there is one. A cluster run with
# tls-cluster no names only its plaintext ports, even to a TLS client: 503,
# never served.
# Configuration: the harness's default in TLS mode, + /api/wrongname/
# (supportdesk_redis_ssl_name evil.example) and /api/wrongca/ (another
# CA); a first environment with /api/plain/ (ssl off, the plaintext
# port: the check's own test); on a cluster, a last one whose nodes run
# with tls-cluster no and tls-replication no.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(envelope_ok error_ok wait_until tls_mode cluster_mode);
use SupportDesk::Cluster;
use SupportDesk::TLS;

plan skip_all => 'TLS mode only (SD_TLS=1, make test-tls): it checks what the harness\'s TLS mode does'
    unless tls_mode();

my $pki = SupportDesk::TLS::pki();
my $NAME = $SupportDesk::Cluster::CLIENT_NAME;

# ---- the check's own test: a plaintext connection of nginx is found
{
    my $env = SupportDesk::Test->new(start_nginx => 0);
    my $plain = $env->cluster
        ? 'supportdesk_redis_cluster ' . join(' ', $env->cluster->seeds)
        : 'supportdesk_redis 127.0.0.1:' . $env->redis_port;
    $env->{server_conf} = "location /api/plain/ { supportdesk; $plain; supportdesk_redis_ssl off; }";
    $env->start_nginx;
    my $key = $env->create_key('acme');
    envelope_ok($env->api('GET', '/api/plain/customers/c0', $key), 404, 'CUSTOMER_NOT_FOUND',
                'the check\'s test: a location on the plaintext port, ssl off, is served');
    my @found = $env->nginx_plaintext_connections;
    ok(scalar @found, 'the check finds nginx\'s plaintext connection (' . scalar(@found) . ')')
        or diag explain [ $env->nginx_tcp_peers ];
    like($found[0] // '', qr/holds a plaintext connection to Redis 127\.0\.0\.1:\d+/, '... and says which');
    envelope_ok($env->api('GET', '/api/v1/customers/c0', $key), 404, 'CUSTOMER_NOT_FOUND',
                '... while the TLS location is served too');
    # the plaintext location is this test's doing, not the module's: stop
    # nginx here, before the cleanup's check would count it
    ok($env->stop_nginx, 'nginx stopped');
    $env->{tls_problems} = [];
}

# ---- every module connection on a TLS port
my $other = "$pki->{dir}/other-ca.crt";
{
    my $cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
            . "-keyout '$pki->{dir}/other-ca.key' -out '$other' -days 2 -subj /CN=other-ca 2>&1";
    my $out = `$cmd`;
    die "$cmd: $out" if $?;
}
my $env = SupportDesk::Test->new(
    server_conf => "location /api/wrongname/ { supportdesk; supportdesk_redis_ssl_name evil.example; }\n"
                 . "location /api/wrongca/ { supportdesk; supportdesk_redis_ssl_trusted_certificate $other; }");
my $c = $env->cluster;

# the servers: plaintext address (the harness's) => TLS address (nginx's)
my %tls_of = $c ? map { $_ => $c->tls_addr($_) } $c->all_nodes
                : ('127.0.0.1:' . $env->redis_port => '127.0.0.1:' . $env->redis_tls_port);
my %plain_port = map { (/(\d+)\z/)[0] => 1 } keys %tls_of;
my %tls_port = map { (/(\d+)\z/)[0] => 1 } values %tls_of;
my @masters = $c ? $c->masters : keys %tls_of;
sub client_of { my $a = shift; $c ? $c->node_client($a) : $env->redis }

# an app on each master, with its key
my %app_of;
for my $i (1 .. 300) {
    my $m = $c ? $c->master_of_key("sd:{app$i}:seq") : $masters[0];
    $app_of{$m} //= "app$i";
    last if keys %app_of == @masters;
}
is(scalar keys %app_of, scalar @masters, 'an app on every master (' . join(', ', map { "$app_of{$_} on $_" } sort keys %app_of) . ')');
my %key = map { $_ => $env->create_key($_) } values %app_of;

for my $m (sort keys %app_of) {
    my $app = $app_of{$m};
    my $r = $env->api('PATCH', 'c1', $key{$app}, { email => "c1\@$app.example.com", name => 'C One' });
    envelope_ok($r, 200, undef, "$app ($m): a write over TLS");
    is(client_of($m)->hget("sd:{$app}:c:c1", 'e'), "c1\@$app.example.com", "$app: stored on $m");
    envelope_ok($env->api('GET', 'c1', $key{$app}), 200, undef, "$app: a read over TLS");
    envelope_ok($env->api('GET', '/api/v1/customers', $key{$app}), 200, undef, "$app: a listing over TLS");
}

# CLIENT LIST of a server: [ { port (laddr's), flags, name, cmd } ]
sub clients_of {
    my ($addr) = @_;
    my @l;
    for my $line (split /\n/, client_of($addr)->client_list) {
        my %f = map { split /=/, $_, 2 } grep { /=/ } split / /, $line;
        my ($port) = ($f{laddr} // '') =~ /:(\d+)\z/;
        push @l, { port => $port, flags => $f{flags} // '', name => $f{name} // '', cmd => $f{cmd} // '' };
    }
    return @l;
}

sub connections_ok {
    my ($when, @must) = @_;
    for my $addr (sort keys %tls_of) {
        my ($tp) = $tls_of{$addr} =~ /(\d+)\z/;
        my ($pp) = $addr =~ /(\d+)\z/;
        my @cl = clients_of($addr);
        # a replica's link to its master (flags S) is on the TLS port too
        my @module = grep { $_->{port} == $tp && $_->{flags} !~ /S/ } @cl;
        my @plain = grep { $_->{port} == $pp } @cl;
        my @foreign = grep { $_->{name} ne $NAME } @plain;
        is(scalar @foreign, 0, "$when: $addr: every connection on its plaintext port $pp is the harness's own ("
           . scalar(@plain) . ')') or diag explain \@foreign;
        cmp_ok(scalar @module, '>=', 1, "$when: $addr: the module is connected to its TLS port $tp ("
               . scalar(@module) . ' connections)') if grep { $_ eq $addr } @must;
    }
    # the same from nginx's side: its sockets to a Redis go to TLS ports
    my @peers = grep { $plain_port{ $_->{port} } || $tls_port{ $_->{port} } } $env->nginx_tcp_peers;
    my @to_plain = grep { $plain_port{ $_->{port} } } @peers;
    is(scalar @to_plain, 0, "$when: no socket of nginx goes to a plaintext port") or diag explain \@to_plain;
    my %seen = map { $_->{port} => 1 } @peers;
    for my $m (@must) {
        my ($tp) = $tls_of{$m} =~ /(\d+)\z/;
        ok($seen{$tp}, "$when: nginx holds a socket to $m\'s TLS port $tp");
    }
}
connections_ok('after the requests', @masters);

# ---- refused, never served: a wrong name, a wrong CA
for my $case (['wrongname', qr/certificate does not match "evil\.example"/],
              ['wrongca', qr/certificate verify error: \(\d+:(?:unable to get local issuer certificate|self.signed certificate in certificate chain)\)/]) {
    my ($loc, $why) = @$case;
    my $before = $env->snapshot;
    for my $m (sort keys %app_of) {
        my $app = $app_of{$m};
        error_ok($env->api('PATCH', "/api/$loc/customers/c1", $key{$app}, { name => 'Should not land' }),
                 503, 'SERVICE_UNAVAILABLE', undef, "$loc: $app: a write is 503");
        error_ok($env->api('GET', "/api/$loc/customers/c1", $key{$app}), 503, 'SERVICE_UNAVAILABLE', undef,
                 "$loc: $app: a read is 503");
    }
    is_deeply($env->snapshot, $before, "$loc: Redis unchanged");
    like($env->nginx_error_log, $why, "$loc: the reason is logged");
}

SKIP: {
    skip 'the cluster\'s part: SD_CLUSTER=1', 1 unless $c;

    # ---- what Redis 7.0 tells a TLS client and a plaintext one
    my ($m0) = @masters;
    my $cli = join ' ', map { "'$_'" } SupportDesk::Cluster::redis_cli_bin(), '--tls', '--cacert', $pki->{ca},
        '-h', '127.0.0.1', '-p', ($tls_of{$m0} =~ /(\d+)\z/)[0];
    my $slots_tls = `$cli CLUSTER SLOTS 2>&1`;
    my @ports_tls = $slots_tls =~ /^(\d{4,5})$/mg;
    my @ports_in_map = grep { $plain_port{$_} || $tls_port{$_} } @ports_tls;
    ok(@ports_in_map && !grep({ !$tls_port{$_} } @ports_in_map),
       'CLUSTER SLOTS asked over TLS names the TLS ports (' . join(' ', @ports_in_map) . ')')
        or diag $slots_tls;
    my @ports_plain = map { map { $_->[1] } @$_[2 .. $#$_] } @{ client_of($m0)->cluster('slots') };
    ok(@ports_plain && !grep({ !$plain_port{$_} } @ports_plain),
       'CLUSTER SLOTS asked in plaintext names the plaintext ports (' . join(' ', @ports_plain) . ')');
    my ($elsewhere) = grep { $_ ne $m0 } @masters;
    my $app = $app_of{$elsewhere};
    like(`$cli GET 'sd:{$app}:seq' 2>&1`, qr/^MOVED \d+ \Q$tls_of{$elsewhere}\E$/m,
         'MOVED to a TLS client names the TLS address');
    my $moved = eval { client_of($m0)->get("sd:{$app}:seq"); '' } // $@;
    like($moved, qr/MOVED \d+ \Q$elsewhere\E\b/, 'MOVED to a plaintext client names the plaintext address');

    # ---- a slot moved: MOVED (over TLS) followed to a known master's TLS port
    my ($a0) = $app_of{$m0};
    my $slot = SupportDesk::Cluster::keyslot("sd:{$a0}:seq");
    $c->move_slot($slot, $elsewhere);
    envelope_ok($env->api('GET', 'c1', $key{$a0}), 200, undef, "slot $slot of $a0 moved to $elsewhere: served (MOVED followed)");
    envelope_ok($env->api('PATCH', 'c2', $key{$a0}, { email => "c2\@$a0.example.com", name => 'C Two' }), 200, undef,
                '... a write too');
    ok($c->node_has_key($elsewhere, "sd:{$a0}:c:c2"), '... stored on the new master');
    connections_ok('after the slot moved', @masters);

    # ---- a master killed: its replica, which no seed named, reached over TLS
    # the third master: its app's slot has not moved
    my ($victim) = grep { $_ ne $elsewhere && $_ ne $m0 } @masters;
    my $vapp = $app_of{$victim};
    my $promoted = $c->kill_master($victim);
    ok($promoted, "$victim killed, its replica $promoted promoted");
    ok(wait_until(sub { $env->api('GET', 'c1', $key{$vapp})->{status} == 200 }, 20, 0.1),
       "$vapp: served again, from $promoted");
    envelope_ok($env->api('PATCH', 'c3', $key{$vapp}, { email => "c3\@$vapp.example.com", name => 'C Three' }), 200, undef,
                "$vapp: a write after the promotion");
    ok($c->node_has_key($promoted, "sd:{$vapp}:c:c3"), "... stored on $promoted");
    delete $tls_of{$victim};
    connections_ok('after the promotion', $promoted, grep { $_ ne $victim } @masters);
}

$env->invariants_ok($_) for sort values %app_of;
undef $env;

# ---- a cluster with tls-cluster no: its map gives only the plaintext
# ports, even over TLS; a TLS gateway cannot use them: 503, never served
SKIP: {
    skip 'the cluster\'s part: SD_CLUSTER=1', 1 unless cluster_mode();
    my $env = SupportDesk::Test->new(redis_args => ['--tls-cluster', 'no', '--tls-replication', 'no']);
    my $key = $env->create_key('acme');
    my $before = $env->snapshot;
    my @res = map { $env->api('PATCH', "n$_", $key, { email => "n$_\@example.com", name => 'N' }) } 1 .. 5;
    is(scalar(grep { $_->{status} == 503 } @res), 5, 'tls-cluster no: every request is 503')
        or diag join ' ', map { $_->{status} } @res;
    is_deeply($env->snapshot, $before, '... Redis unchanged');
    like($env->nginx_error_log, qr/supportdesk: redis 127\.0\.0\.1:(\d+) TLS handshake timed out/,
         '... the TLS handshakes with the plaintext ports the map names fail, logged');
    # its TLS attempts on the plaintext ports are what this case is about,
    # not a fault of the mode: the cleanup's check is not for them
    ok($env->stop_nginx, 'nginx stopped');
    $env->{tls_problems} = [];
}
done_testing;
