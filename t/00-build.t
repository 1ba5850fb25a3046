# The module is built and loads into the installed nginx.
# Configuration: `nginx -t` of the SPEC's deployment example and of a config
# with no directive at all (harness template, t/README.md), then the
# harness's default configuration.
use strict;
use warnings;
use Test::More;
use SupportDesk::Test;

my $so = SupportDesk::Test::module_path();
ok(-f $so, "module file exists: $so")
    or BAIL_OUT("module not built: $so (run make build)");

my $env = SupportDesk::Test->new(start_nginx => 0);

# the SPEC's deployment example (section 1), nothing else of the module
my ($rc, $out) = $env->nginx_t(<<'EOF2', http_body => 1);
    supportdesk_redis 127.0.0.1:6379;
    server {
        listen 127.0.0.1:%PORT%;
        location /api/v1/ { supportdesk; }
        location / { return 200 "legacy\n"; }
    }
EOF2
is($rc, 0, 'nginx -t passes with the SPEC deployment example') or diag $out;
like($out, qr/test is successful/, 'nginx -t reports success') or diag $out;

# minimal: the module loaded, no directive at all
($rc, $out) = $env->nginx_t("server { listen 127.0.0.1:%PORT%; }", http_body => 1);
is($rc, 0, 'nginx -t passes with the module loaded and no directive') or diag $out;

# and it really starts and serves the API envelope
$env->start_nginx;
my $res = $env->request('GET', '/api/v1/customers/x');
SupportDesk::Test::envelope_ok($res, 401, 'UNAUTHORIZED', 'running module answers with the envelope');

done_testing;
