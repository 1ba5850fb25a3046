# Admission control and the pool under pressure: past
# supportdesk_redis_max_pending commands or supportdesk_redis_max_output
# unsent bytes on a connection a request is answered 503 at once, logged at
# most once a second; the requests of a connection that fails are answered
# a slice per turn of the event loop, not all in one; the reconnect after a
# timeout backs off; the ops of a burst are given back once it is over.
# Configuration: five environments, each with supportdesk_redis_connections
# 1: max_pending 5 (3s timeout); max_pending 1000000 + max_output 64k (30s);
# a 100ms timeout; max_pending 100000 with an access log of $msec (10s);
# max_pending 1000000 (30s).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok wait_until single_redis_only tls_mode);

single_redis_only('admission control of the one connection pool to the one Redis, which it pauses and restarts');

sub log_lines { my ($env, $re) = @_; grep { /$re/ } split /\n/, $env->nginx_error_log }
sub get_bytes { my ($env, $key, $ext) = @_; $env->http_bytes('GET', "/api/v1/customers/$ext", headers => { 'X-API-Key' => $key }) }
# (client connections to nginx, bytes of theirs nginx has not read yet)
sub nginx_unread {
    my ($env) = @_;
    my $port = sprintf '%04X', $env->port;
    open my $fh, '<', '/proc/net/tcp' or return (0, 0);
    my ($c, $n) = (0, 0);
    while (<$fh>) {
        my @f = split ' ';
        next unless @f > 4 && $f[1] =~ /:$port\z/ && $f[3] eq '01';
        $c++;
        $n += hex((split /:/, $f[4])[1]);
    }
    return ($c, $n);
}
sub statuses { my %n; $n{ $_->{status} }++ for @_; join ', ', map { "$n{$_} x $_" } sort keys %n }
# bytes Redis has not read yet from its clients (it is paused): the commands
# nginx wrote
sub redis_unread {
    my ($env) = @_;
    my $port = sprintf '%04X', $env->nginx_redis_port;
    open my $fh, '<', '/proc/net/tcp' or return 0;
    my $n = 0;
    while (<$fh>) {
        my @f = split ' ';
        $n += hex((split /:/, $f[4])[1]) if @f > 4 && $f[1] =~ /:$port\z/ && $f[3] eq '01';
    }
    return $n;
}

# ---- max_pending: 503 at once beyond it, logged once a second
{
    my $env = SupportDesk::Test->new(redis_timeout => '3s',
        http_conf => 'supportdesk_redis_connections 1; supportdesk_redis_max_pending 5;');
    my $key = $env->create_key('acme');
    envelope_ok($env->api('GET', 'p0', $key), 404, 'CUSTOMER_NOT_FOUND', 'max_pending: setup (the key is cached)');
    $env->pause_redis;
    my @res = $env->parallel([ map { get_bytes($env, $key, "p$_") } 1 .. 12 ], timeout => 0.5);
    my @refused = grep { $_->{status} == 503 } @res;
    my @waiting = grep { $_->{status} == 599 } @res;
    # the job runner's poll may hold one of the five
    ok(@waiting >= 4 && @waiting <= 5 && @refused + @waiting == 12,
       'max_pending 5, Redis paused: 4 or 5 requests wait, the others are refused')
        or diag statuses(@res);
    envelope_ok($_, 503, 'SERVICE_UNAVAILABLE', 'a request beyond max_pending: 503') for @refused;
    cmp_ok($_->{elapsed}, '<', 0.2, '... at once') for @refused;
    my $BUSY = qr/\[error\] .*supportdesk: redis \S+ busy: 5 commands due on the least loaded connection, supportdesk_redis_max_pending is 5; answering 503 \((\d+) refusals since the last such message, this one included\)/;
    my @l = log_lines($env, $BUSY);
    is(scalar @l, 1, 'the refusals are logged once') or diag join "\n", @l;
    like($l[0] // '', qr/\(1 refusals/, '... the first of them at once');
    $env->resume_redis;
    # the five held commands are answered first (a few ms under load)
    ok(wait_until(sub { $env->api('GET', 'p1', $key)->{status} == 404 }, 3, 0.02),
       'max_pending: served again once Redis has answered the held commands');
    envelope_ok($env->api('GET', 'p1', $key), 404, 'CUSTOMER_NOT_FOUND', 'max_pending: served once Redis answers');

    # a second burst a second later: one more line, counting the others
    $env->pause_redis;
    my ($t, $sent) = (time, 0);
    while (time - $t < 1.3) {
        $env->parallel([ map { get_bytes($env, $key, "q$_") } 1 .. 12 ], timeout => 0.1);
        $sent += 12;
    }
    $env->resume_redis;
    @l = log_lines($env, $BUSY);
    ok(@l >= 2 && @l <= 3, 'a burst of over a second: a line a second') or diag join "\n", @l;
    my ($n2) = ($l[1] // '') =~ $BUSY;
    cmp_ok($n2 // 0, '>', 6, '... which counts the refusals not logged since the last (' . ($n2 // 'none') . ')');
}

# ---- max_output: bytes not sent yet
{
    my $env = SupportDesk::Test->new(redis_timeout => '30s',
        http_conf => 'supportdesk_redis_connections 1; supportdesk_redis_max_pending 1000000; '
                   . 'supportdesk_redis_max_output 64k;');
    my $key = $env->create_key('acme');
    envelope_ok($env->api('GET', 'o0', $key), 404, 'CUSTOMER_NOT_FOUND', 'max_output: setup');
    $env->pause_redis;
    my @batches = map { my $b = $_; $env->http_bytes('PATCH', '/api/v1/customers', headers => { 'X-API-Key' => $key },
        body => { customers => [ map { { externalId => "o${b}_$_", email => "o${b}_$_\@x.example", name => 'N' x 200 } } 1 .. 1000 ] }) } 1 .. 12;
    my @res = $env->parallel(\@batches, timeout => 3);
    my @refused = grep { $_->{status} == 503 } @res;
    # what the kernel buffers (about 1 MB) goes out, then 64k more at most
    # (one batch is about 200 kB): the others are refused
    ok(@refused >= 1 && !grep({ $_->{status} != 503 && $_->{status} != 599 } @res),
       'max_output 64k, Redis paused: once the socket is full, batches are refused') or diag statuses(@res);
    diag 'batches: ' . statuses(@res);
    envelope_ok($refused[0], 503, 'SERVICE_UNAVAILABLE', 'a batch beyond max_output: 503 for the whole request');
    my @l = log_lines($env, qr/\[error\] .*supportdesk: redis \S+ busy: \d+ bytes not sent yet on the least loaded connection, supportdesk_redis_max_output is 65536; answering 503/);
    ok(@l >= 1 && @l <= 3, 'logged, at most once a second') or diag join "\n", @l;
    $env->resume_redis;
    my $n;
    wait_until(sub { my $x = $env->customer_count('acme'); my $same = defined $n && $x == $n; $n = $x; $same }, 10, 0.3);
    ok($n >= 1000 && $n % 1000 == 0 && $n / 1000 + @refused <= 12,
       'the admitted batches are applied whole once Redis answers, the refused ones not at all')
        or diag "customers: $n, refused: " . scalar @refused;
}

# ---- the reconnect after a timeout backs off
{
    my $env = SupportDesk::Test->new(redis_timeout => '100ms',
        http_conf => "supportdesk_redis_connections 1;\n    log_format rt '\$status \$request_time';",
        location_conf => 'access_log %TMP%/rt.log rt;');
    my $key = $env->create_key('acme');
    # the first connect (a TLS handshake in TLS mode) may take longer than
    # the 100 ms on a loaded machine: the setup waits until it is served
    my $setup;
    ok(wait_until(sub { $setup = $env->api('GET', 'b0', $key); $setup->{status} == 404 }, 10, 0.05),
       'backoff: setup (the key cached, the connection up)') or diag "$setup->{status} $setup->{body}";
    envelope_ok($setup, 404, 'CUSTOMER_NOT_FOUND', 'backoff: setup');
    my $R = $env->redis;
    my $conns0 = $R->info('stats')->{total_connections_received};
    my $log0 = length $env->nginx_error_log;    # the setup's own lines apart
    $env->pause_redis;
    my (@res, $t0);
    $t0 = time;
    while (time - $t0 < 2.5) {
        push @res, $env->api('GET', 'b1', $key, undef, timeout => 2);
        sleep 0.01;
    }
    $env->resume_redis;
    my @t504 = grep { $_->{status} == 504 } @res;
    my @t503 = grep { $_->{status} == 503 } @res;
    is(@t504 + @t503, scalar @res, 'Redis paused: every request is 504 (timed out) or 503 (backing off)')
        or diag statuses(@res);
    cmp_ok(scalar @t503, '>', 10, 'requests meet the backoff: 503');
    # at once: nginx's own clock ($request_time, updated only when nginx
    # waits for an event) did not move between the request and its 503,
    # however long the loaded machine took to carry them
    my @rt = map { /^503 (\S+)$/ ? $1 : () } split /\n/, SupportDesk::Test::_slurp($env->tmp . '/rt.log');
    cmp_ok(scalar @rt, '>=', scalar @t503, "... the 503s are in the access log (" . scalar(@rt) . ')');
    my @waited = grep { $_ ne '0.000' } @rt;
    if (tls_mode()) {
        # over TLS the paused Redis's kernel accepts the reconnect, whose
        # handshake then stalls: the requests queued on it meanwhile are 503
        # (no connection) when the first one's 100 ms run out and the
        # attempt is dropped with all of them (ngx_http_supportdesk_redis.c,
        # op_timeout), so one that joined the handshake later waited less
        # (0.092 seen in CI; 0.099 by the first: the timer and
        # $request_time read nginx's cached clock a millisecond apart);
        # every other 503 meets the backoff, at once
        is_deeply([ grep { $_ > 1.5 } @waited ], [],
                  '... over TLS, a 503 waited only for a handshake that never ended, at most one attempt (' . scalar(@waited) . ')');
        cmp_ok((sort { $b <=> $a } @waited)[0] // 0.1, '>=', 0.098,
               '... the first request queued on that handshake waited its whole 100 ms');
        cmp_ok(scalar(@rt) - scalar(@waited), '>', 10, '... the others at once ($request_time 0.000)');
    } else {
        is_deeply(\@waited, [], '... at once: answered without waiting for anything ($request_time 0.000)');
    }
    envelope_ok($t503[0], 503, 'SERVICE_UNAVAILABLE', 'a request while the connection backs off');
    # Redis accepts what waited in its backlog once it runs again
    my $conns;
    wait_until(sub { my $n = $R->info('stats')->{total_connections_received};
                     my $same = defined $conns && $n == $conns; $conns = $n; $same }, 5, 0.2);
    my $connects = $conns - $conns0;
    diag sprintf '%d requests: %d x 504, %d x 503; %d connects in 2.5 s', scalar @res, scalar @t504, scalar @t503, $connects;
    cmp_ok($connects, '<=', 9, 'at most 9 connects in 2.5 s (50, 100, 200, 400, 500 ms between them, plus the 100 ms timeouts)');
    # a connection that timed out, or (over TLS) an attempt whose
    # handshake did not end within the timeout
    my @delays = map { /(?:did not answer within|: no connection within) 100 ms.*reconnecting in (\d+) ms/ ? $1 : () }
        split /\n/, substr($env->nginx_error_log, $log0);
    is_deeply([ @delays[0 .. 4] ], [50, 100, 200, 400, 500], 'the log says when it reconnects: 50 ms, doubling to 500')
        or diag "@delays";
    my $r;
    ok(wait_until(sub { $r = $env->api('GET', 'b2', $key); $r->{status} == 404 }, 5, 0.05),
       'backoff: served once Redis answers') or diag "$r->{status} $r->{body}";
}

# ---- the requests of a failed connection are answered a slice per turn
{
    my $N = 800;
    my $env = SupportDesk::Test->new(redis_timeout => '10s',
        http_conf => "supportdesk_redis_connections 1; supportdesk_redis_max_pending 100000;\n"
                   . "    log_format msec '\$msec \$status';",
        location_conf => 'access_log %TMP%/msec.log msec;');
    my $key = $env->create_key('acme');
    envelope_ok($env->api('GET', 's0', $key), 404, 'CUSTOMER_NOT_FOUND', 'slices: setup');
    my $cmd = length "*2\r\n\$7\r\nHGETALL\r\n\$13\r\nsd:{acme}:c:s\r\n";
    $env->pause_redis;
    my $killer = fork // die "fork: $!";
    if (!$killer) {
        # once nginx has written every request's command, Redis dies
        wait_until(sub { redis_unread($env) >= $N * $cmd }, 20, 0.05);
        kill 'KILL', $env->redis_pid;
        POSIX::_exit(0);
    }
    my @res = $env->parallel([ map { get_bytes($env, $key, 's') } 1 .. $N ], timeout => 20);
    waitpid $killer, 0;
    $env->kill_redis;
    my @e503 = grep { $_->{status} == 503 } @res;
    is(scalar @e503, $N, "$N requests waiting on a connection that dies: all 503") or diag statuses(@res);
    envelope_ok($e503[0], 503, 'SERVICE_UNAVAILABLE', '... in the envelope');
    my %turn;
    open my $fh, '<', $env->tmp . '/msec.log' or die;
    while (<$fh>) { $turn{$1}++ if /^(\d+\.\d+) 503$/ }
    my @sizes = sort { $b <=> $a } values %turn;
    my @at = sort { $a <=> $b } keys %turn;
    diag sprintf '%d distinct $msec among the 503s, the most in one: %d; from the first to the last: %.3f s',
        scalar @sizes, $sizes[0] // 0, @at ? $at[-1] - $at[0] : 0;
    cmp_ok($sizes[0] // 0, '<=', 200, 'no more than two slices of 100 share a millisecond');
    cmp_ok(scalar @sizes, '>=', 4, 'the answers span several turns of the event loop');
}

# ---- the ops of a burst are given back
{
    my $env = SupportDesk::Test->new(redis_timeout => '30s',
        http_conf => 'supportdesk_redis_connections 1; supportdesk_redis_max_pending 1000000;');
    my $key = $env->create_key('acme');
    envelope_ok($env->api('GET', 'f0', $key), 404, 'CUSTOMER_NOT_FOUND', 'free list: setup');
    my $GIVEN = qr/\[info\] .*supportdesk: redis \S+: the ops of a burst are given back, (\d+) at its peak, (\d+) kept for reuse/;
    for my $round (1, 2) {
        $env->pause_redis;
        my @batches = map { my $b = $_; $env->http_bytes('PATCH', '/api/v1/customers', headers => { 'X-API-Key' => $key },
            body => { customers => [ map { { externalId => "f${round}_${b}_$_", email => "f${round}_${b}_$_\@x.example", name => 'F' } } 1 .. 1000 ] }) } 1 .. 5;
        my $resumer = fork // die;
        if (!$resumer) {
            # once nginx has read the five batches (and so queued their
            # 5000 commands), Redis runs again
            wait_until(sub { my ($c, $n) = nginx_unread($env); $c == 5 && $n == 0 }, 20, 0.02);
            $env->resume_redis;
            POSIX::_exit(0);
        }
        my @res = $env->parallel(\@batches, timeout => 20);
        waitpid $resumer, 0;
        $env->resume_redis;
        is(statuses(@res), '5 x 200', "burst $round: five batches of 1000 served");
        my @l;
        ok(wait_until(sub { @l = log_lines($env, $GIVEN); @l >= $round }, 5), "burst $round: its ops are given back once it is over")
            or diag $env->nginx_error_log;
        my ($peak, $kept) = ($l[$round - 1] // '') =~ $GIVEN;
        cmp_ok($peak // 0, '>=', 5000, "burst $round: ... $peak at its peak");
        is($kept, 1024, "burst $round: ... 1024 kept for reuse");
    }
}

done_testing;
