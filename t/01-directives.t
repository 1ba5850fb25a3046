# Every directive: a valid value passes `nginx -t`, a bad value fails with a
# message naming the directive.
# Configuration: no nginx runs; `nginx -t` of the harness template with
# each case's directives in http{}, server{} and location /api/v1/ {}.
# Log allowances: each failing `nginx -t` may log the [emerg] naming its
# directive, in its own t<n>.err / t<n>.out only.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test qw(single_pass_only);

single_pass_only('nginx -t of every directive\'s values, no request reaches the storage');

my $env = SupportDesk::Test->new(start_nginx => 0);

# $http: directives in http{}, $srv in server{}, $loc in location /api/v1/ {}
sub conf {
    my (%c) = @_;
    my $http = $c{http} // '';
    my $srv  = $c{srv}  // '';
    my $loc  = $c{loc}  // 'supportdesk;';
    return <<"EOF2";
    $http
    server {
        listen 127.0.0.1:%PORT%;
        $srv
        location /api/v1/ { $loc }
    }
EOF2
}

sub passes {
    my ($name, %c) = @_;
    my ($rc, $out) = $env->nginx_t(conf(%c), http_body => 1);
    ok($rc == 0 && $out !~ /unknown directive/, "valid: $name") or diag $out;
}

# says => qr/.../: the message the [emerg] must carry too
sub fails {
    my ($name, $directive, %c) = @_;
    my $says = delete $c{says};
    my ($rc, $out, $n) = $env->nginx_t(conf(%c), http_body => 1);
    # the [emerg] naming the directive is what this nginx -t is for: allowed
    # in its own error log and output (t<n>.err, t<n>.out), nowhere else
    $env->allow_log(qr/\[emerg\] .*"\Q$directive\E"/, file => qr/^t$n\.(?:err|out)\z/);
    my $ok = $rc != 0
        && $out =~ /\[emerg\].*"\Q$directive\E"/
        && $out !~ /unknown directive/
        && $out !~ /test is successful/
        && (!$says || $out =~ /\[emerg\].*"\Q$directive\E" directive $says/);
    ok($ok, "invalid: $name (names $directive" . ($says ? ", says why" : '') . ')') or diag "exit $rc: $out";
}

# ---- positive controls (so that the failures below mean something)
passes('all directives with valid values', http => <<'EOF2');
    supportdesk_redis 127.0.0.1:6379;
    supportdesk_redis_password secret;
    supportdesk_redis_db 3;
    supportdesk_redis_connect_timeout 500ms;
    supportdesk_redis_timeout 2s;
    supportdesk_redis_connections 4;
    supportdesk_max_body_size 64k;
    supportdesk_key_cache_size 1m;
    supportdesk_key_cache_ttl 10s;
    supportdesk_key_cache_negative_ttl 2s;
    supportdesk_key_lookup_rate 100;
EOF2
passes('supportdesk_key_lookup_rate 1', http => 'supportdesk_key_lookup_rate 1;');
passes('supportdesk_key_lookup_rate 1000000', http => 'supportdesk_key_lookup_rate 1000000;');
passes('supportdesk_redis unix:/path', http => 'supportdesk_redis unix:/tmp/sd-nonexistent.sock;');
passes('supportdesk_redis localhost:6379', http => 'supportdesk_redis localhost:6379;');
passes('supportdesk_redis_password user password', http => 'supportdesk_redis_password alice s3cret;');
passes('redis directives in server and location', srv => <<'EOF2', loc => <<'EOF3');
    supportdesk_redis 127.0.0.1:6380;
    supportdesk_redis_db 1;
    supportdesk_redis_timeout 3s;
EOF2
    supportdesk;
    supportdesk_redis 127.0.0.1:6381;
    supportdesk_redis_password pw;
    supportdesk_redis_db 2;
    supportdesk_redis_connect_timeout 1s;
    supportdesk_redis_timeout 1s;
    supportdesk_redis_connections 1;
    supportdesk_max_body_size 1k;
EOF3
passes('supportdesk_max_body_size in bytes', loc => 'supportdesk; supportdesk_max_body_size 65536;');

# ---- supportdesk_redis
fails('port 99999', 'supportdesk_redis', http => 'supportdesk_redis 127.0.0.1:99999;');
fails('port 0', 'supportdesk_redis', http => 'supportdesk_redis 127.0.0.1:0;');
fails('empty value', 'supportdesk_redis', http => 'supportdesk_redis "";');
fails('unix: without a path', 'supportdesk_redis', http => 'supportdesk_redis unix:;');
fails('no argument', 'supportdesk_redis', http => 'supportdesk_redis;');
fails('two addresses', 'supportdesk_redis', http => 'supportdesk_redis 127.0.0.1:1 127.0.0.1:2;');

# ---- timeouts, numbers, sizes
fails('supportdesk_redis_timeout abc', 'supportdesk_redis_timeout',
      http => 'supportdesk_redis_timeout abc;');
fails('supportdesk_redis_connect_timeout -1', 'supportdesk_redis_connect_timeout',
      http => 'supportdesk_redis_connect_timeout -1;');
fails('supportdesk_redis_db -1', 'supportdesk_redis_db', http => 'supportdesk_redis_db -1;');
fails('supportdesk_redis_db x', 'supportdesk_redis_db', http => 'supportdesk_redis_db x;');
fails('supportdesk_redis_connections 0', 'supportdesk_redis_connections',
      http => 'supportdesk_redis_connections 0;');
fails('supportdesk_redis_connections x', 'supportdesk_redis_connections',
      http => 'supportdesk_redis_connections x;');
fails('supportdesk_max_body_size abc', 'supportdesk_max_body_size',
      loc => 'supportdesk; supportdesk_max_body_size abc;');
fails('supportdesk_key_cache_ttl x', 'supportdesk_key_cache_ttl',
      http => 'supportdesk_key_cache_ttl x;');
fails('supportdesk_key_cache_negative_ttl x', 'supportdesk_key_cache_negative_ttl',
      http => 'supportdesk_key_cache_negative_ttl x;');
fails('supportdesk_key_cache_size 1 (too small)', 'supportdesk_key_cache_size',
      http => 'supportdesk_key_cache_size 1;');
fails('supportdesk_key_cache_size abc', 'supportdesk_key_cache_size',
      http => 'supportdesk_key_cache_size abc;');
fails('supportdesk_key_lookup_rate 0', 'supportdesk_key_lookup_rate',
      http => 'supportdesk_key_lookup_rate 0;');
fails('supportdesk_key_lookup_rate 1000001', 'supportdesk_key_lookup_rate',
      http => 'supportdesk_key_lookup_rate 1000001;');
fails('supportdesk_key_lookup_rate x', 'supportdesk_key_lookup_rate',
      http => 'supportdesk_key_lookup_rate x;');
fails('supportdesk_key_lookup_rate in server context', 'supportdesk_key_lookup_rate',
      srv => 'supportdesk_key_lookup_rate 10;');
fails('supportdesk_redis_password with three arguments', 'supportdesk_redis_password',
      http => 'supportdesk_redis_password a b c;');

fails('supportdesk_batch_max_body_size 0', 'supportdesk_batch_max_body_size',
      loc => 'supportdesk; supportdesk_batch_max_body_size 0;');
fails('supportdesk_batch_max_body_size abc', 'supportdesk_batch_max_body_size',
      http => 'supportdesk_batch_max_body_size abc;');
passes('supportdesk_redis_cluster', http => 'supportdesk_redis_cluster 127.0.0.1:7000 127.0.0.1:7001;');
passes('supportdesk_redis_cluster at http, supportdesk_redis in a location',
       http => 'supportdesk_redis_cluster 127.0.0.1:7000;', loc => 'supportdesk; supportdesk_redis 127.0.0.1:6379;');
fails('supportdesk_redis_cluster and supportdesk_redis at one level', 'supportdesk_redis_cluster',
      http => 'supportdesk_redis 127.0.0.1:6379; supportdesk_redis_cluster 127.0.0.1:7000;');
fails('supportdesk_redis_cluster unix:', 'supportdesk_redis_cluster',
      http => 'supportdesk_redis_cluster unix:/tmp/r.sock;');
fails('supportdesk_redis_cluster bad address', 'supportdesk_redis_cluster',
      http => 'supportdesk_redis_cluster 127.0.0.1:99999;');
passes('supportdesk_redis_sentinel', http => 'supportdesk_redis_sentinel mymaster 127.0.0.1:26379 127.0.0.1:26380;');
fails('supportdesk_redis_sentinel without sentinels', 'supportdesk_redis_sentinel', http => 'supportdesk_redis_sentinel mymaster;');
fails('supportdesk_redis_sentinel with supportdesk_redis', 'supportdesk_redis',
      http => 'supportdesk_redis_sentinel m 127.0.0.1:26379; supportdesk_redis 127.0.0.1:6379;');
my $one_redis = qr/cannot be combined with another of "supportdesk_redis", "supportdesk_redis_cluster" and "supportdesk_redis_sentinel" at the same level/;
fails('supportdesk_redis and supportdesk_redis_sentinel at one level', 'supportdesk_redis_sentinel', says => $one_redis,
      srv => 'supportdesk_redis 127.0.0.1:6379; supportdesk_redis_sentinel m 127.0.0.1:26379;');
fails('supportdesk_redis_cluster and supportdesk_redis_sentinel in a location', 'supportdesk_redis_cluster', says => $one_redis,
      loc => 'supportdesk; supportdesk_redis_sentinel m 127.0.0.1:26379; supportdesk_redis_cluster 127.0.0.1:7000;');
fails('supportdesk_redis twice at one level', 'supportdesk_redis', says => qr/is duplicate/,
      http => 'supportdesk_redis 127.0.0.1:6379; supportdesk_redis 127.0.0.1:6380;');
fails('supportdesk_redis_cluster twice at one level', 'supportdesk_redis_cluster', says => qr/is duplicate/,
      http => 'supportdesk_redis_cluster 127.0.0.1:7000; supportdesk_redis_cluster 127.0.0.1:7001;');
passes('supportdesk_redis_wait', http => 'supportdesk_redis_wait 1 50ms;', loc => 'supportdesk; supportdesk_redis_wait off;');
fails('supportdesk_redis_wait 0', 'supportdesk_redis_wait', http => 'supportdesk_redis_wait 0;');
fails('supportdesk_redis_wait timeout over the Redis timeout', 'supportdesk_redis_wait',
      http => 'supportdesk_redis_wait 1 5s; supportdesk_redis_timeout 2s;');
fails('supportdesk_redis_ssl_verify without a CA', 'supportdesk_redis_ssl_verify',
      http => 'supportdesk_redis_ssl on; supportdesk_redis_ssl_verify on;');
fails('supportdesk_redis_ssl_certificate without its key', 'supportdesk_redis_ssl_certificate_key',
      http => 'supportdesk_redis_ssl on; supportdesk_redis_ssl_certificate /etc/ssl/certs/ssl-cert-snakeoil.pem;');
fails('supportdesk_redis_ssl_verify_depth 0', 'supportdesk_redis_ssl_verify_depth',
      http => 'supportdesk_redis_ssl_verify_depth 0;');
passes('supportdesk_redis_ssl off with its files', http => 'supportdesk_redis_ssl off; supportdesk_redis_ssl_name r.internal;');
passes('supportdesk_ignore_client_abort on/off', http => 'supportdesk_ignore_client_abort on;',
       loc => 'supportdesk; supportdesk_ignore_client_abort off;');
fails('supportdesk_ignore_client_abort maybe', 'supportdesk_ignore_client_abort',
      loc => 'supportdesk; supportdesk_ignore_client_abort maybe;');
fails('supportdesk_list_scan_limit 0', 'supportdesk_list_scan_limit',
      http => 'supportdesk_list_scan_limit 0;');
fails('supportdesk_list_scan_limit 100001', 'supportdesk_list_scan_limit',
      loc => 'supportdesk; supportdesk_list_scan_limit 100001;');
fails('supportdesk_job_chunk_size 0', 'supportdesk_job_chunk_size',
      http => 'supportdesk_job_chunk_size 0;');
fails('supportdesk_job_chunk_size x', 'supportdesk_job_chunk_size',
      http => 'supportdesk_job_chunk_size x;');
fails('supportdesk_job_chunk_size in location context', 'supportdesk_job_chunk_size',
      loc => 'supportdesk; supportdesk_job_chunk_size 10;');
passes('the issue 4 directives with good values',
       http => 'supportdesk_job_chunk_size 200;',
       loc => 'supportdesk; supportdesk_list_scan_limit 50; supportdesk_batch_max_body_size 2m;');

# ---- the bounds of issue 10: every refusal names its range
sub fails_with {
    my ($name, $directive, $message, %c) = @_;
    my ($rc, $out, $n) = $env->nginx_t(conf(%c), http_body => 1);
    $env->allow_log(qr/\[emerg\] .*"\Q$directive\E"/, file => qr/^t$n\.(?:err|out)\z/);
    ok($rc != 0 && $out =~ /\[emerg\] "\Q$directive\E" directive \Q$message\E/,
       "invalid: $name ($directive $message)") or diag "exit $rc: $out";
}
passes('the reply bounds at their limits, every level',
       http => 'supportdesk_redis_max_reply_size 64k; supportdesk_redis_max_reply_elements 16;',
       srv  => 'supportdesk_redis_max_reply_size 1024m; supportdesk_redis_max_reply_elements 16777216;',
       loc  => 'supportdesk; supportdesk_redis_max_reply_size 16m; supportdesk_redis_max_reply_elements 65536;');
for my $bad ('63k', '1025m', '0', 'x') {
    fails_with("supportdesk_redis_max_reply_size $bad", 'supportdesk_redis_max_reply_size',
               $bad eq 'x' ? 'invalid value' : 'must be between 64k and 1024m',
               http => "supportdesk_redis_max_reply_size $bad;");
}
passes('the admission bounds at their limits, every level',
       http => 'supportdesk_redis_max_pending 1; supportdesk_redis_max_output 64k;',
       srv  => 'supportdesk_redis_max_pending 1000000; supportdesk_redis_max_output 1024m;',
       loc  => 'supportdesk; supportdesk_redis_max_pending 10000; supportdesk_redis_max_output 8m;');
for my $bad ('0', '1000001', '-1', 'x') {
    fails_with("supportdesk_redis_max_pending $bad", 'supportdesk_redis_max_pending',
               $bad =~ /^\d+\z/ ? 'must be between 1 and 1000000' : 'invalid number',
               srv => "supportdesk_redis_max_pending $bad;");
}
for my $bad ('63k', '1025m', '0', 'x') {
    fails_with("supportdesk_redis_max_output $bad", 'supportdesk_redis_max_output',
               $bad eq 'x' ? 'invalid value' : 'must be between 64k and 1024m',
               loc => "supportdesk; supportdesk_redis_max_output $bad;");
}
for my $bad ('15', '16777217', '-1', 'x') {
    fails_with("supportdesk_redis_max_reply_elements $bad", 'supportdesk_redis_max_reply_elements',
               $bad =~ /^\d+\z/ ? 'must be between 16 and 16777216' : 'invalid number',
               loc => "supportdesk; supportdesk_redis_max_reply_elements $bad;");
}
passes('supportdesk_job_ttl at its limits', http => 'supportdesk_job_ttl 1s;');
passes('supportdesk_job_ttl 365d', http => 'supportdesk_job_ttl 365d;');
passes('supportdesk_job_ttl 24h', http => 'supportdesk_job_ttl 24h;');
for my $bad ('0', '999ms', '366d', 'x') {
    fails_with("supportdesk_job_ttl $bad", 'supportdesk_job_ttl',
               $bad eq 'x' ? 'invalid value' : 'must be between 1s and 365d',
               http => "supportdesk_job_ttl $bad;");
}
fails('supportdesk_job_ttl in location context', 'supportdesk_job_ttl',
      loc => 'supportdesk; supportdesk_job_ttl 1h;');

# ---- contexts and arguments
fails('supportdesk in server context', 'supportdesk', srv => 'supportdesk;');
fails('supportdesk in http context', 'supportdesk', http => 'supportdesk;');
fails('supportdesk on; (takes no arguments)', 'supportdesk', loc => 'supportdesk on;');
fails('supportdesk_key_cache_ttl in server context', 'supportdesk_key_cache_ttl',
      srv => 'supportdesk_key_cache_ttl 5s;');
fails('supportdesk_key_cache_size in location context', 'supportdesk_key_cache_size',
      loc => 'supportdesk; supportdesk_key_cache_size 1m;');

# ---- duplicates in the same block
fails('duplicate supportdesk', 'supportdesk', loc => 'supportdesk; supportdesk;');
fails('duplicate supportdesk_redis', 'supportdesk_redis',
      http => 'supportdesk_redis 127.0.0.1:1; supportdesk_redis 127.0.0.1:2;');
fails('duplicate supportdesk_redis_timeout', 'supportdesk_redis_timeout',
      http => 'supportdesk_redis_timeout 1s; supportdesk_redis_timeout 2s;');
fails('duplicate supportdesk_redis_db', 'supportdesk_redis_db',
      http => 'supportdesk_redis_db 1; supportdesk_redis_db 2;');
fails('duplicate supportdesk_max_body_size', 'supportdesk_max_body_size',
      loc => 'supportdesk; supportdesk_max_body_size 1k; supportdesk_max_body_size 2k;');
fails('duplicate supportdesk_key_cache_ttl', 'supportdesk_key_cache_ttl',
      http => 'supportdesk_key_cache_ttl 1s; supportdesk_key_cache_ttl 2s;');

done_testing;
