# supportdesk_redis over a unix socket, supportdesk_redis_password (password
# and ACL user + password), supportdesk_redis_db.
# Configuration: three environments: Redis on a unix socket
# (supportdesk_redis unix:...); Redis with requirepass and
# supportdesk_redis_password + supportdesk_redis_db 3; an ACL user
# (supportdesk_redis_password sdgw gwpass).
# Cluster mode (SD_CLUSTER=1): the password and the ACL user are given to
# every node of the cluster; no unix socket (cluster nodes are host:port)
# and no database 3 (a cluster has only database 0): those parts are
# skipped, the password case runs without supportdesk_redis_db.
# TLS mode (SD_TLS=1): no unix socket (Redis speaks TLS on TCP only): that
# part is skipped.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(envelope_ok cluster_mode tls_mode);

sub roundtrip {
    my ($env, $key, $label) = @_;
    my $r = $env->api('PATCH', 'opt_1', $key, { email => 'opt@example.com', name => 'Opt' });
    envelope_ok($r, 200, undef, "$label: create");
    $r = $env->api('GET', 'opt_1', $key);
    envelope_ok($r, 200, undef, "$label: get");
    is($r->{json}{data}{customer}{name}, 'Opt', "$label: customer read back");
    ok($env->redis->exists('sd:{acme}:c:opt_1'), "$label: hash in Redis");
    $env->invariants_ok('acme', "$label: invariants");
}

SKIP: {
    skip 'cluster mode: cluster nodes are host:port, no unix socket', 6 if cluster_mode();
    skip 'TLS mode: Redis speaks TLS on TCP only, no unix socket', 6 if tls_mode();
    my $env = SupportDesk::Test->new(redis_unix => 1);
    my $key = $env->create_key('acme');
    roundtrip($env, $key, 'unix socket');
    my $r = $env->api('DELETE', 'opt_1', $key);
    envelope_ok($r, 200, undef, 'unix socket: delete');
}

if (cluster_mode()) {
    my $env = SupportDesk::Test->new(
        redis_args => ['--requirepass', 'rootpw'], redis_password => 'rootpw',
        http_conf => 'supportdesk_redis_password rootpw;');
    my $key = $env->create_key('acme');
    # the API key and the app's keys are on two slots (of one master or two)
    roundtrip($env, $key, 'password on every node');
} else {
    my $env = SupportDesk::Test->new(
        redis_args => ['--requirepass', 'rootpw'],
        redis_password => 'rootpw', redis_db => 3,
        http_conf => 'supportdesk_redis_password rootpw; supportdesk_redis_db 3;');
    my $key = $env->create_key('acme');    # in db 3, where the module looks
    roundtrip($env, $key, 'password + db 3');
    my $db0 = Redis->new(server => '127.0.0.1:' . $env->redis_port, password => 'rootpw',
                         reconnect => 0);
    is_deeply([ $db0->keys('sd:*') ], [], 'nothing written to db 0');
}

{
    my $env = SupportDesk::Test->new(
        redis_args => ['--requirepass', 'rootpw',
                       '--user', 'sdgw', 'on', '>gwpass', '~*', '&*', '+@all'],
        redis_password => 'rootpw',
        http_conf => 'supportdesk_redis_password sdgw gwpass;');
    my $key = $env->create_key('acme');
    roundtrip($env, $key, 'ACL user');
    my $clients = join "\n", $env->redis->client_list;
    like($clients, qr/\buser=sdgw\b/, 'the module is connected as ACL user sdgw');
}

done_testing;
