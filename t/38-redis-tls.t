# TLS to Redis through nginx's ngx_ssl (supportdesk_redis_ssl*): a test CA
# made with openssl, a redis-server with a TLS port, verification on. The
# API is served over TLS only (CLIENT LIST shows every module connection
# on the TLS port); a wrong CA, a wrong name, or TLS against the plain port
# is refused (503, the reason in error_log), never served; verification
# off still encrypts; a client certificate works when Redis asks for one.
# Configuration: the harness's Redis with --tls-port beside its plain port
# (the plain one for the test's own checks), each case its own location.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use SupportDesk::Test qw(envelope_ok error_ok wait_until plain_pass_only);

plan skip_all => 'single Redis only: TLS to a cluster is the TLS cluster pass\'s (SD_TLS=1 SD_CLUSTER=1, t/45-tls-mode.t)'
    if $ENV{SD_CLUSTER};
plain_pass_only('it sets up its own TLS Redis, test CA, wrong CA and client certificate: the TLS mode would change nothing it checks');

my $pki = tempdir('sd-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $pki;
sub ossl {
    my $out = qx{openssl @_ 2>&1};
    die "openssl @_: $out" if $?;
}
# CA, and a server certificate for localhost / 127.0.0.1 signed by it
ossl("req -x509 -newkey rsa:2048 -nodes -keyout $pki/ca.key -out $pki/ca.crt -days 2 -subj /CN=sd-test-ca");
ossl("req -newkey rsa:2048 -nodes -keyout $pki/redis.key -out $pki/redis.csr -subj /CN=localhost");
open my $ext, '>', "$pki/ext.cnf" or die;
print $ext "subjectAltName=DNS:localhost,DNS:redis.internal,IP:127.0.0.1\n";
close $ext;
ossl("x509 -req -in $pki/redis.csr -CA $pki/ca.crt -CAkey $pki/ca.key -CAcreateserial -out $pki/redis.crt -days 2 -extfile $pki/ext.cnf");
# another CA, which signed nothing of this Redis
ossl("req -x509 -newkey rsa:2048 -nodes -keyout $pki/other.key -out $pki/other.crt -days 2 -subj /CN=other-ca");
# a client certificate by the test CA
ossl("req -newkey rsa:2048 -nodes -keyout $pki/client.key -out $pki/client.csr -subj /CN=gateway");
ossl("x509 -req -in $pki/client.csr -CA $pki/ca.crt -CAkey $pki/ca.key -CAcreateserial -out $pki/client.crt -days 2");
chmod 0644, glob("$pki/*");

my $tls = SupportDesk::Test::free_port();
my $loc = sub { my $extra = shift; "location /api/$_[0]/ { supportdesk; supportdesk_redis 127.0.0.1:%TLS%; $extra }" };
my %cases = (
    v1      => '',    # the default location: set below through location_conf
    noverify => 'supportdesk_redis_ssl on;',
    wrongca => "supportdesk_redis_ssl on; supportdesk_redis_ssl_verify on; supportdesk_redis_ssl_trusted_certificate $pki/other.crt; supportdesk_redis_ssl_name localhost;",
    wrongname => "supportdesk_redis_ssl on; supportdesk_redis_ssl_verify on; supportdesk_redis_ssl_trusted_certificate $pki/ca.crt; supportdesk_redis_ssl_name evil.example;",
    plain   => "supportdesk_redis_connect_timeout 300ms; supportdesk_redis_ssl on; supportdesk_redis_ssl_verify on; supportdesk_redis_ssl_trusted_certificate $pki/ca.crt; supportdesk_redis_ssl_name localhost;",
    client  => "supportdesk_redis_ssl on; supportdesk_redis_ssl_verify on; supportdesk_redis_ssl_trusted_certificate $pki/ca.crt; supportdesk_redis_ssl_name redis.internal; supportdesk_redis_ssl_certificate $pki/client.crt; supportdesk_redis_ssl_certificate_key $pki/client.key;",
);
my $server_conf = join "\n", map {
    my $c = $_;
    my $target = $c eq 'plain' ? '%REDIS_PORT%' : $tls;
    "location /api/$c/ { supportdesk; supportdesk_redis 127.0.0.1:$target; $cases{$c} }"
} grep { $_ ne 'v1' } sort keys %cases;

# handshakes are slow under valgrind: a generous connect timeout
my $env = SupportDesk::Test->new(redis_timeout => '5s',
    http_conf => 'supportdesk_redis_connect_timeout 10s;',
    redis_args => ['--tls-port', $tls, '--tls-cert-file', "$pki/redis.crt", '--tls-key-file', "$pki/redis.key",
                   '--tls-ca-cert-file', "$pki/ca.crt", '--tls-auth-clients', 'optional'],
    location_conf => "supportdesk_redis 127.0.0.1:$tls; supportdesk_redis_ssl on; supportdesk_redis_ssl_verify on; "
                   . "supportdesk_redis_ssl_trusted_certificate $pki/ca.crt; supportdesk_redis_ssl_name localhost;",
    server_conf => $server_conf,
);
my $key = $env->create_key('acme');
my $R = $env->redis;

# ---- the whole of a write and a read over TLS, verified
my $r = $env->api('PATCH', 't1', $key, { email => 't1@example.com', name => 'T One' }, timeout => 20);
envelope_ok($r, 200, undef, 'upsert over TLS, certificate and name verified');
is($R->hget('sd:{acme}:c:t1', 'e'), 't1@example.com', '... stored');
envelope_ok($env->api('GET', 't1', $key), 200, undef, 'GET over TLS');
envelope_ok($env->api('GET', '/api/v1/customers', $key), 200, undef, 'a listing over TLS');
envelope_ok($env->api('POST', '/api/v1/customers/t1/notes', $key, { note => 'over TLS' }), 201, undef, 'a note over TLS');
envelope_ok($env->api('GET', '/api/v1/events', $key), 200, undef, 'the feed over TLS');

# every connection of the module's verified location is on the TLS port
my @clients = grep { /laddr=127\.0\.0\.1:(\d+)/ && $1 != $env->redis_port } split /\n/, $R->client_list;
cmp_ok(scalar @clients, '>=', 1, 'the module is connected to the TLS port (' . scalar(@clients) . ' connections)');

# ---- verification off: still TLS
envelope_ok($env->api('GET', '/api/noverify/customers/t1', $key), 200, undef, 'verify off: served over TLS');

# ---- a client certificate (Redis checks it against its CA)
envelope_ok($env->api('GET', '/api/client/customers/t1', $key), 200, undef,
            'a client certificate, a name among the SANs: served');

# ---- refused, never served
for my $case (['wrongca', qr/certificate verify error: \(\d+:(?:unable to get local issuer certificate|self.signed certificate in certificate chain)\)/],
              ['wrongname', qr/certificate does not match "evil\.example"/],
              ['plain', qr/TLS handshake timed out|SSL_do_handshake\(\) failed|redis 127\.0\.0\.1:\d+ closed the connection|wrong version number|packet length too long/]) {
    my ($c, $why) = @$case;
    my $before = $env->snapshot;
    $r = $env->api('PATCH', "/api/$c/customers/t1", $key, { name => 'Should not land' });
    error_ok($r, 503, 'SERVICE_UNAVAILABLE', undef, "$c: a write is 503");
    error_ok($env->api('GET', "/api/$c/customers/t1", $key), 503, 'SERVICE_UNAVAILABLE', undef, "$c: a read is 503");
    is_deeply($env->snapshot, $before, "$c: Redis unchanged");
    like($env->nginx_error_log, $why, "$c: the reason is logged");
}
is($R->hget('sd:{acme}:c:t1', 'n'), 'T One', 'no refused write landed');

# ---- a TLS session is resumed on reconnect (CLIENT KILL drops them)
my $handshakes0 = $R->info('stats')->{total_connections_received};
$R->client_kill('TYPE', 'normal', 'SKIPME', 'yes');
ok(wait_until(sub { $env->api('GET', 't1', $key)->{status} == 200 }, 5, 0.05), 'after CLIENT KILL: served again over TLS');
cmp_ok($R->info('stats')->{total_connections_received}, '>', $handshakes0, '... on new connections');

$env->invariants_ok('acme');
done_testing;
