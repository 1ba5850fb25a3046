package SupportDesk::TLS;

# The test PKI of the harness's TLS mode (SD_TLS=1, t/README.md "TLS mode"):
# made with openssl once per test process, in a private temp dir (0700,
# removed at the end unless SD_KEEP=1):
#
#   ca.crt, ca.key          a test CA (CN sd-test-ca)
#   server.crt, server.key  signed by it, CN localhost, subjectAltName
#                           DNS:localhost, IP:127.0.0.1 (every redis-server
#                           and sentinel the tests start presents it)
#
# EC P-256 keys: a few milliseconds each to make, and cheap handshakes
# (valgrind runs, 2-core CI).
#
#   my $pki = SupportDesk::TLS::pki();     # { dir, ca, ca_key, cert, key }
#   my @args = SupportDesk::TLS::redis_args($tls_port);
#   my $conf = SupportDesk::TLS::sentinel_conf($tls_port);
#   my $nginx = SupportDesk::TLS::nginx_directives();
#
# Only core Perl.

use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);

# the name nginx checks the certificate against
# (supportdesk_redis_ssl_name): it is among the certificate's SANs
our $NAME = 'localhost';

my $PKI;
my $OWNER = $$;

sub _openssl {
    my (@args) = @_;
    my $cmd = join ' ', 'openssl', map { "'$_'" } @args;
    my $out = `$cmd 2>&1`;
    croak "$cmd failed:\n$out" if $?;
}

sub pki {
    return $PKI if $PKI;
    my $keep = $ENV{SD_KEEP} ? 1 : 0;
    my $d = tempdir('sd-pki-XXXXXX', TMPDIR => 1, CLEANUP => !$keep);
    chmod 0700, $d;
    print STDERR "# SD_KEEP: test PKI in $d\n" if $keep;
    my @ec = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes');
    _openssl('req', '-x509', @ec, '-keyout', "$d/ca.key", '-out', "$d/ca.crt",
             '-days', 2, '-subj', '/CN=sd-test-ca');
    _openssl('req', @ec, '-keyout', "$d/server.key", '-out', "$d/server.csr",
             '-subj', "/CN=$NAME");
    open my $fh, '>', "$d/server.ext" or croak "$d/server.ext: $!";
    print $fh "subjectAltName=DNS:$NAME,IP:127.0.0.1\n";
    close $fh;
    _openssl('x509', '-req', '-in', "$d/server.csr", '-CA', "$d/ca.crt", '-CAkey', "$d/ca.key",
             '-CAcreateserial', '-out', "$d/server.crt", '-days', 2, '-extfile', "$d/server.ext");
    chmod 0600, "$d/ca.key", "$d/server.key";
    return $PKI = { dir => $d, ca => "$d/ca.crt", ca_key => "$d/ca.key",
                    cert => "$d/server.crt", key => "$d/server.key" };
}

# redis-server arguments for a TLS port beside the plaintext one, the
# replication to its master over TLS too (tls-replication: a replica
# connects to its master's TLS port, and announces its own TLS port);
# clients are not asked for a certificate
sub redis_args {
    my ($tls_port) = @_;
    croak 'redis_args: no TLS port' unless $tls_port;
    my $p = pki();
    return ('--tls-port', $tls_port, '--tls-cert-file', $p->{cert}, '--tls-key-file', $p->{key},
            '--tls-ca-cert-file', $p->{ca}, '--tls-auth-clients', 'no', '--tls-replication', 'yes');
}

# the same as lines of a sentinel's configuration file
sub sentinel_conf {
    my ($tls_port) = @_;
    my @a = redis_args($tls_port);
    my $conf = '';
    while (my ($k, $v) = splice @a, 0, 2) { $k =~ s/^--//; $conf .= "$k $v\n" }
    return $conf;
}

# what nginx is given in TLS mode (http{} level, so every location inherits
# it): TLS, the certificate verified against the test CA and the name
sub nginx_directives {
    my $p = pki();
    return "supportdesk_redis_ssl on;\n"
         . "    supportdesk_redis_ssl_verify on;\n"
         . "    supportdesk_redis_ssl_trusted_certificate $p->{ca};\n"
         . "    supportdesk_redis_ssl_name $NAME;\n";
}

1;
