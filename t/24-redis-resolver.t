# supportdesk_redis <name>:<port> with nginx's resolver: the workers resolve
# the name without blocking (nginx -t does not need it in /etc/hosts), and
# again: when the name moves while the old server still serves (every few
# seconds: the connections drain to the new address with no failed
# request), when a server answers READONLY (a managed Redis's failover: the
# name points at the new master), when a name cannot be resolved (503, then
# served once it can). Without a resolver a name is resolved by nginx -t
# and a name it cannot resolve is refused there.
# Configuration: a scripted DNS server (t/lib/SupportDesk/FakeDNS.pm),
# `resolver 127.0.0.1:<dns> valid=1s ipv6=off`; the harness's Redis on
# 127.0.0.1 and a second one on 127.0.0.2, the same port. TLS mode
# (SD_TLS=1): the second one has the same TLS port too, the two replicate
# over TLS, nginx is given the TLS port (checked against the name
# localhost, whatever the address).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use POSIX ();
use Redis;
use SupportDesk::Test qw(envelope_ok wait_until single_redis_only tls_mode);
use SupportDesk::TLS;
use SupportDesk::FakeDNS;

single_redis_only('a name for the one server (cluster nodes are named by the cluster)');

my $dns = SupportDesk::FakeDNS->new;
my $name = 'redis.sd.test';
my $env = SupportDesk::Test->new(
    http_conf     => 'resolver 127.0.0.1:' . $dns->port . ' valid=1s ipv6=off; resolver_timeout 2s;',
    location_conf => "supportdesk_redis $name:%REDIS_PORT%;",
    server_conf   => "location /api/missing/ { supportdesk; supportdesk_redis missing.sd.test:%REDIS_PORT%; }",
    start_nginx   => 0,
);
my $port = $env->redis_port;
# the port nginx is given (and a replica: tls-replication): the TLS one in
# TLS mode
my $srv = $env->nginx_redis_port;
$dns->set($name => '127.0.0.1');
$env->start_nginx;
my $key = $env->create_key('acme');
my $A = $env->redis;

# ---- nginx -t
{
    my $http = "supportdesk_redis $name:$srv;\nserver { listen 127.0.0.1:" . SupportDesk::Test::free_port()
             . "; location /api/v1/ { supportdesk; } }\n";
    my ($rc, $out) = $env->nginx_t("resolver 127.0.0.1:" . $dns->port . ";\n$http", http_body => 1);
    is($rc, 0, 'nginx -t: a name the system cannot resolve, with a resolver: ok') or diag $out;
    ($rc, $out) = $env->nginx_t($http, http_body => 1);
    isnt($rc, 0, 'nginx -t: the same name without a resolver: refused');
    like($out, qr/invalid "supportdesk_redis" address "\Q$name:$srv\E": host not found/, '... host not found');
    $env->allow_log(qr/\[emerg\] .*invalid "supportdesk_redis" address "\Q$name:$srv\E": host not found/,
                    file => qr/^t\d+\.(?:err|out)$/);
    ($rc, $out) = $env->nginx_t("resolver 127.0.0.1:" . $dns->port . ";\nsupportdesk_redis 127.0.0.1:$srv;\n"
        . "server { listen 127.0.0.1:" . SupportDesk::Test::free_port() . "; location /api/v1/ { supportdesk; } }\n",
        http_body => 1);
    is($rc, 0, 'nginx -t: an IP address with a resolver: ok');
}

# ---- served through the name
my $r = $env->api('PATCH', 'n1', $key, { email => 'n1@example.com', name => 'N One' });
envelope_ok($r, 200, undef, 'served with the Redis named redis.sd.test');
is($A->hget('sd:{acme}:c:n1', 'n'), 'N One', '... stored on 127.0.0.1');
cmp_ok($dns->queries($name), '>=', 1, 'the name was asked of the resolver');
like($env->nginx_error_log, qr/\[info\] .*supportdesk: redis \Q$name:$srv\E: "\Q$name\E" resolves to 127\.0\.0\.1:\Q$srv\E/,
     'the address is logged');

# ---- a second Redis on 127.0.0.2, the same port, with the same key and data
my $dir = $env->tmp;
my $bpid = fork // die "fork: $!";
if (!$bpid) {
    open STDOUT, '>', "$dir/redis-b.log"; open STDERR, '>&', \*STDOUT;
    exec 'redis-server', '--port', $port, '--bind', '127.0.0.2', '--save', '', '--appendonly', 'no',
         '--dir', $dir, '--protected-mode', 'no', (tls_mode() ? SupportDesk::TLS::redis_args($srv) : ())
        or POSIX::_exit(127);
}
my $B;
ok(wait_until(sub { $B = eval { Redis->new(server => "127.0.0.2:$port", reconnect => 0) } }, 5), 'a second Redis on 127.0.0.2');
# B as a replica of A until it has A's data, then a master of its own
$B->replicaof('127.0.0.1', $srv);
ok(wait_until(sub { ($B->hget('sd:{acme}:c:n1', 'n') // '') eq 'N One' }, 10), 'B has A\'s data');
$B->replicaof('no', 'one');

# CLIENT LIST without the test's own connection and replication links
sub module_clients {
    my ($redis) = @_;
    return scalar grep { /\bcmd=(?!client)/ && !/flags=[SM]/ } split /\n/, $redis->client_list;
}
my $before = module_clients($A);
cmp_ok($before, '>=', 1, "the module is connected to A ($before connections)");

# ---- the name moves while A still serves: requests go on, nothing fails
$dns->set($name => '127.0.0.2');
my ($n, @failed) = (0);
my $moved = wait_until(sub {
    $n++;
    my $x = $env->api('PATCH', "m$n", $key, { email => "m$n\@example.com", name => "M $n" });
    push @failed, "$x->{status} $x->{body}" unless $x->{status} == 200;
    defined $B->hget("sd:{acme}:c:m$n", 'n');
}, 15, 0.05);
ok($moved, "the name moved: writes reach B ($n requests)");
is(scalar @failed, 0, '... none failed while the connections moved') or diag join "\n", @failed[0 .. 4];
ok(wait_until(sub { module_clients($A) == 0 }, 10), 'A: the module\'s connections drained and closed');
like($env->nginx_error_log, qr/\[notice\] .*"\Q$name\E" no longer resolves to 127\.0\.0\.1:\Q$srv\E/,
     'the move is logged');
envelope_ok($env->api('GET', 'n1', $key), 200, undef, 'a customer written before is read from B');

# ---- READONLY: B becomes A's replica and the name points at A again
$dns->set($name => '127.0.0.1');
$A->replicaof('no', 'one');
$B->replicaof('127.0.0.1', $srv);
my (%seen, $k) = ();
my $back = wait_until(sub {
    $k++;
    my $x = $env->api('PATCH', "r$k", $key, { email => "r$k\@example.com", name => "R $k" });
    $seen{"$x->{status} " . ($x->{json}{error}{code} // '')}++;
    $x->{status} == 200 && defined $A->hget("sd:{acme}:c:r$k", 'n');
}, 15, 0.05);
ok($back, 'READONLY on B: the name is resolved again, writes reach A');
diag 'answers meanwhile: ' . join ', ', map { "$_ x $seen{$_}" } sort keys %seen;
is_deeply([ grep { !/^(?:200 |503 SERVICE_UNAVAILABLE)$/ } keys %seen ], [], '... meanwhile only 200 or 503');

# ---- a name that cannot be resolved
$r = $env->api('GET', '/api/missing/customers/n1', $key);
envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', 'a name the DNS does not know: 503');
like($env->nginx_error_log, qr/\[error\] .*"missing\.sd\.test" could not be resolved \(3: Host not found\)/,
     '... logged with the resolver\'s reason');
$dns->set('missing.sd.test' => '127.0.0.1');
ok(wait_until(sub { $env->api('GET', '/api/missing/customers/n1', $key)->{status} == 200 }, 10, 0.2),
   'served once the name resolves');

kill 'TERM', $bpid;
waitpid $bpid, 0;
done_testing;
