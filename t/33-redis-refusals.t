# Redis refusing the work is a 503 SERVICE_UNAVAILABLE with the reason in
# the error log, never a 500: NOREPLICAS (min-replicas-to-write), MISCONF
# (a failed BGSAVE under stop-writes-on-bgsave-error), OOM (maxmemory +
# noeviction), BUSY (a script past busy-reply-threshold), READONLY (a
# replica), MASTERDOWN (a replica cut from its master). An ACL user without
# EVALSHA is found at connect and logged once as a configuration error;
# its requests are 503 until the ACL allows scripts again.
# Configuration: the harness's default, Redis with
# --enable-protected-configs yes (CONFIG SET dir); a second Redis (master of
# the READONLY case); an environment with an ACL user without +evalsha
# (supportdesk_redis_password sdgw gwpass).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use SupportDesk::Test qw(envelope_ok wait_until single_redis_only);

single_redis_only('refusals the one Redis is made to give (NOREPLICAS, MISCONF, OOM, BUSY, READONLY, MASTERDOWN by CONFIG SET and REPLICAOF on it)');

my $env = SupportDesk::Test->new(redis_args => ['--enable-protected-configs', 'yes']);
my $key = $env->create_key('acme');
my $R = $env->redis;
my $n = 0;

sub upsert {
    my ($e, $k) = @_;
    $n++;
    return ($e // $env)->api('PATCH', "r$n", $k // $key, { email => "r$n\@example.com", name => "R $n" });
}
sub log_count { my ($re, $e) = @_; scalar(() = ($e // $env)->nginx_error_log =~ /$re/g) }
# the request is a 503 envelope and the error log says why, once more
sub refused_ok {
    my ($name, $reason, $do) = @_;
    my $re = qr/\[error\] .*supportdesk: redis cannot serve: \Q$reason\E/;
    my $before = log_count($re);
    my $r = $do->();
    envelope_ok($r, 503, 'SERVICE_UNAVAILABLE', "$name: 503");
    ok(wait_until(sub { log_count($re) > $before }, 2), "$name: the error log names $reason");
    return $r;
}
sub writes_again {
    my ($name) = @_;
    my $r;
    ok(wait_until(sub { $r = upsert(); $r->{status} == 200 }, 5, 0.05), "$name: writes work again")
        or diag "$r->{status} $r->{body}";
}
sub info_field { my ($f, $sec) = @_; my ($v) = $R->info($sec)->{$f}; $v }

envelope_ok(upsert(), 200, undef, 'setup: a write');
envelope_ok($env->api('GET', 'r1', $key), 200, undef, 'setup: a read');

# ---- NOREPLICAS: min-replicas-to-write with no replica
$R->config_set('min-replicas-to-write', 1);
refused_ok('min-replicas-to-write 1, no replica: PATCH', 'NOREPLICAS', sub { upsert() });
my $r = refused_ok('NOREPLICAS: DELETE', 'NOREPLICAS', sub { $env->api('DELETE', 'r1', $key) });
$r = $env->api('PATCH', '/api/v1/customers', $key,
               { customers => [{ externalId => 'b1', email => 'b1@example.com', name => 'B' }] });
envelope_ok($r, 200, undef, 'NOREPLICAS: a batch answers 200');
is_deeply($r->{json}{data}{results},
          [{ externalId => 'b1', success => JSON::PP::false,
             error => { code => 'SERVICE_UNAVAILABLE', message => 'storage is unavailable' } }],
          'NOREPLICAS: ... its item is SERVICE_UNAVAILABLE');
envelope_ok($env->api('GET', 'r1', $key), 200, undef, 'NOREPLICAS: reads still work');
$R->config_set('min-replicas-to-write', 0);
writes_again('min-replicas-to-write 0');

# ---- MISCONF: stop-writes-on-bgsave-error after a BGSAVE that failed
# (root writes anywhere, so the dump goes to /proc, where nobody can)
my ($dir) = grep { m{^/} } @{ $R->config_get('dir') };
$R->config_set('save', '3600 1');
$R->config_set('stop-writes-on-bgsave-error', 'yes');
$R->config_set('dir', '/proc');
$R->bgsave;
ok(wait_until(sub { $R->info('persistence')->{rdb_bgsave_in_progress} == 0
                    && $R->info('persistence')->{rdb_last_bgsave_status} eq 'err' }, 10),
   'setup: BGSAVE failed');
refused_ok('MISCONF: PATCH', 'MISCONF', sub { upsert() });
$R->config_set('dir', $dir);
$R->bgsave;
ok(wait_until(sub { $R->info('persistence')->{rdb_bgsave_in_progress} == 0
                    && $R->info('persistence')->{rdb_last_bgsave_status} eq 'ok' }, 10),
   'setup: BGSAVE works again');
$R->config_set('save', '');
writes_again('after a good BGSAVE');

# ---- OOM: maxmemory with noeviction, over it
$R->set('filler', 'x' x (2 * 1024 * 1024));
$R->config_set('maxmemory-policy', 'noeviction');
$R->config_set('maxmemory', '1mb');
refused_ok('OOM: PATCH', 'OOM', sub { upsert() });
refused_ok('OOM: a new note', 'OOM',
           sub { $env->api('POST', '/api/v1/customers/r1/notes', $key, { note => 'hello' }) });
$R->del('filler');
$R->config_set('maxmemory', 0);
writes_again('maxmemory 0');

# ---- BUSY: a script that runs past busy-reply-threshold
$R->config_set('busy-reply-threshold', 100);
my $busy = fork // die "fork: $!";
if (!$busy) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->redis_port) or POSIX::_exit(1);
    print $s "EVAL \"local i = 0 while true do i = i + 1 end\" 0\r\n";
    sysread $s, my $buf, 1000;    # until SCRIPT KILL
    POSIX::_exit(0);
}
my $busy_probe = sub { my $x = eval { Redis->new(server => '127.0.0.1:' . $env->redis_port, reconnect => 0)->get("busy-probe") }; $@ };
ok(wait_until(sub { ($busy_probe->() // '') =~ /BUSY/ }, 5), 'setup: Redis answers BUSY');
refused_ok('BUSY: PATCH', 'BUSY', sub { upsert() });
refused_ok('BUSY: GET', 'BUSY', sub { $env->api('GET', 'r1', $key) });
Redis->new(server => '127.0.0.1:' . $env->redis_port, reconnect => 0)->script_kill;
waitpid $busy, 0;
delete $env->{redis};
$R = $env->redis;
writes_again('after SCRIPT KILL');

# ---- READONLY: Redis made a replica of another; MASTERDOWN: cut from it
{
    my $master = SupportDesk::Test->new(start_nginx => 0);
    $master->create_key('acme', 'replicated', $key);    # the replica's data is the master's
    # (its TLS port in TLS mode: the harness's Redis replicates over TLS)
    $R->replicaof('127.0.0.1', $master->nginx_redis_port);
    ok(wait_until(sub { ($R->info('replication')->{master_link_status} // '') eq 'up' }, 10),
       'setup: Redis is a replica');
    refused_ok('READONLY: PATCH', 'READONLY', sub { upsert() });
    envelope_ok($env->api('GET', 'r1', $key), 404, 'CUSTOMER_NOT_FOUND',
                'READONLY: reads are served (from the replica\'s data)');
    $R->config_set('replica-serve-stale-data', 'no');
    $master->stop_redis(save => 0);
    ok(wait_until(sub { ($R->info('replication')->{master_link_status} // '') eq 'down' }, 10),
       'setup: the master is gone');
    refused_ok('MASTERDOWN: GET', 'MASTERDOWN', sub { $env->api('GET', 'r1', $key) });
    $R->replicaof('no', 'one');
    $R->config_set('replica-serve-stale-data', 'yes');
    writes_again('REPLICAOF NO ONE');
}
unlike($env->nginx_error_log, qr/unexpected redis error|INTERNAL_ERROR/, 'no refusal was taken for a bug (500)');

# ---- NOPERM: an ACL user without EVALSHA
{
    my $acl = SupportDesk::Test->new(
        redis_args => ['--user', 'sdgw', 'on', '>gwpass', '~*', '&*', '+@all', '-evalsha'],
        http_conf  => 'supportdesk_redis_password sdgw gwpass;');
    my $k = $acl->create_key('acme');
    my $AR = $acl->redis;
    my $cfg = qr/\[error\] .*supportdesk: redis \S+: configuration error: the ACL user "sdgw" may not run EVALSHA \(NOPERM[^)]*\)/;
    ok(wait_until(sub { log_count($cfg, $acl) >= 1 }, 5), 'NOPERM: found at connect and logged as a configuration error')
        or diag $acl->nginx_error_log;
    for my $i (1 .. 5) {
        my $x = $acl->api('PATCH', "acl$i", $k, { email => "acl$i\@example.com", name => 'Acl' });
        envelope_ok($x, 503, 'SERVICE_UNAVAILABLE', "NOPERM: request $i is 503");
        sleep 0.2;
    }
    is(log_count($cfg, $acl), 1, 'NOPERM: logged once, not per request nor per reconnect');
    unlike($acl->nginx_error_log, qr/redis cannot serve: NOPERM|unexpected redis error/,
           'NOPERM: no per-request error');
    $AR->acl('SETUSER', 'sdgw', '+evalsha');
    my $x;
    ok(wait_until(sub { $x = $acl->api('PATCH', 'acl_ok', $k, { email => 'ok@example.com', name => 'Ok' });
                        $x->{status} == 200 }, 5, 0.05), 'NOPERM: served once the ACL allows EVALSHA')
        or diag "$x->{status} $x->{body}";
    like($acl->nginx_error_log, qr/\[notice\] .*supportdesk: redis \S+: the ACL allows the scripts again/,
         'NOPERM: the recovery is logged');
}

done_testing;
