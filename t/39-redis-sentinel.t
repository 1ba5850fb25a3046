# supportdesk_redis_sentinel: the master found through Redis Sentinel and
# followed through a failover without a reload. One master (the harness's
# Redis), one replica, three sentinels (quorum 2). SENTINEL FAILOVER while
# requests run: the module follows +switch-master (and asks again when it
# loses the master), ROLE at connect keeps it off a demoted master, writes
# land on the new master; only the switch's moment answers 503, never 500.
# A master name no sentinel knows is 503, logged.
# Configuration: supportdesk_redis_sentinel mymaster <3 sentinels> in the
# API location; supportdesk_redis_timeout 2s. TLS mode (SD_TLS=1): the
# replica and the sentinels have TLS ports too (the test PKI), replicate
# and watch over TLS (tls-replication), and nginx is given the sentinels'
# TLS ports; the test's own clients use the plaintext ones.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Redis;
use SupportDesk::Test qw(envelope_ok error_ok wait_until tls_mode);
use SupportDesk::TLS;

plan skip_all => 'single Redis only: sentinels watch one master'
    if $ENV{SD_CLUSTER};

my (@pids, @sentinels);
END { kill 'KILL', @pids if @pids }

my $env = SupportDesk::Test->new(start_nginx => 0, redis_timeout => '2s');
my $tmp = $env->tmp;
my $master = $env->redis_port;
# the port servers and nginx are given: the TLS one in TLS mode
my $master_srv = $env->nginx_redis_port;

sub spawn {
    my ($log, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        exec @cmd;
        exit 127;
    }
    push @pids, $pid;
    return $pid;
}
sub client { Redis->new(server => "127.0.0.1:$_[0]", reconnect => 0, cnx_timeout => 1) }

my $replica = SupportDesk::Test::free_port();
my $replica_srv = tls_mode() ? SupportDesk::Test::free_port() : $replica;
spawn("$tmp/replica.log", SupportDesk::Test::redis_server_bin(), '--port', $replica, '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--dir', $tmp, '--dbfilename', 'replica.rdb',
      '--replicaof', '127.0.0.1', $master_srv, '--protected-mode', 'no',
      (tls_mode() ? SupportDesk::TLS::redis_args($replica_srv) : ()));
ok(wait_until(sub { (eval { client($replica)->info('replication')->{master_link_status} } // '') eq 'up' }, 10, 0.1),
   'the replica is in sync');

my @sentinels_srv;
for my $i (1 .. 3) {
    my $port = SupportDesk::Test::free_port();
    my $srv = tls_mode() ? SupportDesk::Test::free_port() : $port;
    open my $fh, '>', "$tmp/sentinel$i.conf" or die;
    print $fh "port $port\nbind 127.0.0.1\nprotected-mode no\ndir $tmp\n",
              (tls_mode() ? SupportDesk::TLS::sentinel_conf($srv) : ''),
              "sentinel monitor mymaster 127.0.0.1 $master_srv 2\n",
              "sentinel down-after-milliseconds mymaster 1000\n",
              "sentinel failover-timeout mymaster 10000\n";
    close $fh;
    spawn("$tmp/sentinel$i.log", SupportDesk::Test::redis_server_bin(), "$tmp/sentinel$i.conf", '--sentinel');
    push @sentinels, $port;
    push @sentinels_srv, $srv;
}
ok(wait_until(sub {
    my $n = eval { client($sentinels[0])->sentinel('master', 'mymaster') };
    return 0 unless ref $n;
    my %m = @$n;
    ($m{'num-other-sentinels'} // 0) >= 2 && ($m{'num-slaves'} // 0) >= 1;
}, 20, 0.2), 'three sentinels watch the master and its replica');

$env->{location_conf} = 'supportdesk_redis_sentinel mymaster ' . join(' ', map { "127.0.0.1:$_" } @sentinels_srv) . ';';
$env->{server_conf} = 'location /api/nobody/ { supportdesk; supportdesk_redis_sentinel nobody '
                    . join(' ', map { "127.0.0.1:$_" } @sentinels_srv) . '; }';
$env->start_nginx;
my $key = $env->create_key('acme');

ok(wait_until(sub { $env->api('GET', 's0', $key)->{status} == 404 }, 10, 0.1),
   'served through the master the sentinels name');
envelope_ok($env->api('PATCH', 's1', $key, { email => 's1@example.com', name => 'Before' }), 200, undef, 'a write');
is(client($master)->hget('sd:{acme}:c:s1', 'n'), 'Before', '... on the master');

# unknown master name: 503 and logged
error_ok($env->api('GET', '/api/nobody/customers/s1', $key), 503, 'SERVICE_UNAVAILABLE', undef,
         'a master no sentinel knows: 503');
ok(wait_until(sub { $env->nginx_error_log =~ /sentinel 127\.0\.0\.1:\d+ does not know the master "nobody"/ }, 5, 0.1),
   '... logged');

# ---- failover under requests
# Until the sentinels reconfigure it, the old master still takes writes
# (Sentinel's own window, which min-replicas-to-write closes): the test
# waits for the writes to reach the new master.
my %status;
my $t0 = time;
my ($promoted, $followed);
client($sentinels[0])->sentinel('failover', 'mymaster');
my $n = 0;
while (time - $t0 < 20) {
    my $name = 'Write ' . ++$n;
    # promoted before the write was sent: a write the old master took just
    # before the promotion has replicated there, and says nothing
    my $was_promoted = $promoted;
    my $r = $env->api('PATCH', 's1', $key, { name => $name }, timeout => 5);
    $status{ $r->{status} }++;
    my $role = eval { client($replica)->role->[0] } // '';
    $promoted //= time - $t0 if $role eq 'master';
    if ($was_promoted && $r->{status} == 200
        && (eval { client($replica)->hget('sd:{acme}:c:s1', 'n') } // '') eq $name)
    {
        $followed = time - $t0;
        last;
    }
    sleep 0.02;
}
ok($promoted, sprintf('the replica was promoted (%.2f s after SENTINEL FAILOVER)', $promoted // -1));
ok($followed, sprintf('writes reach the new master without a reload (%.2f s after)', $followed // -1));
diag join ', ', map { "$_ x $status{$_}" } sort keys %status;
ok(!grep({ $_ != 200 && $_ != 503 } keys %status), 'during the switch: only 200 and 503 (never 500 or 504)');

envelope_ok($env->api('PATCH', 's1', $key, { name => 'After' }), 200, undef, 'a write after the failover');
is(client($replica)->hget('sd:{acme}:c:s1', 'n'), 'After', '... on the new master');
like($env->nginx_error_log, qr/\[notice\] .*the master "mymaster" is 127\.0\.0\.1:$replica_srv\b/, 'the switch is logged');
my @on_new = grep { /cmd=(evalsha|hgetall|hget|role)/ } split /\n/, client($replica)->client_list;
cmp_ok(scalar @on_new, '>=', 1, 'the module is connected to the new master');
# the old master comes back as a replica: the module stays off it
ok(wait_until(sub { (eval { client($master)->role->[0] } // '') eq 'slave' }, 20, 0.2), 'the old master is a replica now');
envelope_ok($env->api('PATCH', 's1', $key, { name => 'Later' }), 200, undef, 'writes keep going to the new master');
is(client($replica)->hget('sd:{acme}:c:s1', 'n'), 'Later', '... yes');
if (tls_mode()) {
    # every connection nginx holds (to the sentinels, to the master) is TLS
    my %plain = map { $_ => 1 } $master, $replica, @sentinels;
    my %tls = map { $_ => 1 } $master_srv, $replica_srv, @sentinels_srv;
    my @peers = $env->nginx_tcp_peers;
    is(scalar(grep { $plain{ $_->{port} } } @peers), 0, 'TLS mode: nginx holds no connection to a plaintext port');
    cmp_ok(scalar(grep { $tls{ $_->{port} } && $_->{port} != $master_srv && $_->{port} != $replica_srv } @peers), '>=', 1,
           '... and its connections to the sentinels are on their TLS ports');
}

done_testing;
