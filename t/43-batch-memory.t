# Batch memory: a 1 MiB batch (PATCH /customers, 1000 items) costs the
# worker a few MiB while it waits for Redis, not the tens of MiB of a
# jansson tree of the whole body: items are parsed one at a time and each
# tree is freed once the item's Redis arguments are built. 100 such
# batches in flight at once (Redis stopped until all are queued, then
# resumed) keep the worker under 1 GB of RSS, at most 8 MiB each; every
# batch is then answered in full and Redis holds what was sent.
# Configuration: supportdesk_redis_timeout 120s, supportdesk_redis_max_pending
# 1000000 and supportdesk_redis_max_output 1024m (so that every batch is
# admitted while Redis is stopped), supportdesk_redis_connections 1,
# supportdesk_key_cache_ttl 600s (the key needs no lookup while Redis is
# stopped, however long the warm-up took).
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok wait_until json_encode json_decode single_redis_only);

single_redis_only('Redis stopped until 100 batches of 1 MiB have arrived, longer than a cluster node timeout (2 s); the memory it measures is the worker\'s, whatever the storage');

my $MB = 1024 * 1024;
# memcheck's bookkeeping, ASan's quarantine of freed memory count in the
# process's RSS, and they are slow (ASan unwinds the stack of each of a
# batch's 500,000 mallocs: 8 s a batch): there 2 batches, the memory
# unmeasured, the answers checked
my $SANITIZED = SupportDesk::Test::nginx_bin() =~ m{/(?:valgrind|asan)/};
my $N = $SANITIZED ? 2 : 100;
my $env = SupportDesk::Test->new(
    redis_timeout => '120s',
    http_conf => 'supportdesk_redis_connections 1; supportdesk_redis_max_pending 1000000;'
               . ' supportdesk_redis_max_output 1024m; supportdesk_key_cache_ttl 600s;',
);
my $key = $env->create_key('acme', 'batch memory');
my ($worker) = $env->worker_pids;
my $R = $env->redis;

sub status_kb {
    my ($field) = @_;
    open my $fh, '<', "/proc/$worker/status" or return 0;
    while (<$fh>) { return $1 if /^\Q$field\E:\s+(\d+) kB/ }
    return 0;
}
sub cpu_ticks {
    open my $fh, '<', "/proc/$worker/stat" or return 0;
    my @f = split ' ', (split /\)/, scalar <$fh>)[-1];
    return $f[11] + $f[12];
}
# bytes of client connections nginx has not read yet
sub nginx_unread {
    my $port = sprintf '%04X', $env->port;
    open my $fh, '<', '/proc/net/tcp' or return 0;
    my $n = 0;
    while (<$fh>) {
        my @f = split ' ';
        $n += hex((split /:/, $f[4])[1]) if @f > 4 && $f[1] =~ /:$port\z/ && $f[3] eq '01';
    }
    return $n;
}

# 1000 items of about 1 KiB: a metadata array of small numbers is the most
# jansson nodes a byte of body can make
sub body {
    my ($tag) = @_;
    my @items = map {
        { externalId => "m$_", email => "m$_\@acme.com", name => "Member $_",
          metadata => { batch => $tag, t => [ map { $_ % 10 } 1 .. 470 ] } }
    } 1 .. 1000;
    return json_encode({ customers => \@items });
}
my $body = body('b');
ok(length($body) > 0.95 * $MB && length($body) <= $MB, 'the body is just under 1 MiB (' . length($body) . ' bytes)');
my $bytes = $env->http_bytes('PATCH', '/api/v1/customers',
    headers => { 'X-API-Key' => $key, 'Content-Type' => 'application/json' }, body => $body);

# warm: the key cached, the connection up, the scripts loaded, the
# customers created (the batches below update them with the same values)
my $r = $env->request('PATCH', '/api/v1/customers', timeout => 60,
    headers => { 'X-API-Key' => $key, 'Content-Type' => 'application/json' }, body => $body);
envelope_ok($r, 200, undef, 'one 1 MiB batch is applied');
is(scalar(grep { $_->{success} } @{ $r->{json}{data}{results} || [] }), 1000, 'all 1000 items succeeded');
my $base = status_kb('VmRSS');
diag "worker RSS before the batches: $base kB";

# ---- 100 batches in flight at once
$env->pause_redis;
local $SIG{PIPE} = 'IGNORE';
my @c;
for (1 .. $N) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->port, Proto => 'tcp')
        or BAIL_OUT("connect: $!");
    $s->blocking(0);
    push @c, { s => $s, off => 0, in => '' };
}
my $t0 = time;
while (my @w = grep { $_->{off} < length $bytes } @c) {
    last if time - $t0 > 120;
    my $win = '';
    vec($win, fileno $_->{s}, 1) = 1 for @w;
    select(undef, my $wout = $win, undef, 1) > 0 or next;
    for my $x (@w) {
        next unless vec($wout, fileno $x->{s}, 1);
        my $n = syswrite($x->{s}, $bytes, 262144, $x->{off});
        $x->{off} += $n if $n;
    }
}
is(scalar(grep { $_->{off} == length $bytes } @c), $N, "all $N batches sent");
# nginx has read every body, and the worker is idle: every batch is queued
ok(wait_until(sub { nginx_unread() == 0 }, 120), 'nginx read every body');
my ($ticks, $idle) = (cpu_ticks(), 0);
while ($idle < 10 && time - $t0 < 240) {
    sleep 0.1;
    my $t = cpu_ticks();
    $idle = $t == $ticks ? $idle + 1 : 0;
    $ticks = $t;
}
my $rss = status_kb('VmRSS');
my $hwm = status_kb('VmHWM');
my $per = ($rss - $base) / $N;
diag sprintf "%d batches in flight: worker RSS %d kB (%.0f kB a batch above the %d kB before), peak %d kB; "
    . "%.1f s of worker CPU for them", $N, $rss, $per, $base, $hwm, $ticks / 100;
SKIP: {
    skip 'nginx runs under valgrind or ASan', 2 if $SANITIZED;
    cmp_ok($rss, '<', 1024 * 1024, "$N batches of 1 MiB in flight: the worker's RSS is under 1 GB");
    cmp_ok($per, '<=', 8 * 1024, 'at most 8 MiB of worker memory a batch in flight');
}

# ---- Redis back: every batch answered in full
$env->resume_redis;
my %status;
my $deadline = time + 240;
while ((my @open = grep { !$_->{res} } @c) && time < $deadline) {
    my $rin = '';
    vec($rin, fileno $_->{s}, 1) = 1 for @open;
    select(my $rout = $rin, undef, undef, 1) > 0 or next;
    for my $x (@open) {
        next unless vec($rout, fileno $x->{s}, 1);
        my $n = sysread($x->{s}, my $chunk, 262144);
        $x->{in} .= $chunk if $n;
        my $res = SupportDesk::Test::_parse_response($x->{in}, !$n);
        $res = { status => 599, body => $x->{in} } if !$n && !($res && $res->{complete});
        next unless $res && $res->{complete};
        $res->{json} = json_decode($res->{body});
        $x->{res} = $res;
    }
}
my ($ok, $full) = (0, 0);
for my $x (@c) {
    my $res = $x->{res} || { status => 599 };
    $status{ $res->{status} }++;
    next unless $res->{status} == 200;
    $ok++;
    my $results = $res->{json}{data}{results} || [];
    $full++ if @$results == 1000 && !grep { !$_->{success} || $_->{wasCreated} } @$results;
}
# one of them for the OpenAPI check
$env->record_answer($bytes, $c[0]{res}) if $c[0]{res};
is($ok, $N, "all $N batches answered 200 (" . join(', ', map { "$status{$_} x $_" } sort keys %status) . ')');
is($full, $N, 'each with 1000 results, every item updated');
my %h = $R->hgetall('sd:{acme}:c:m1000');
is($h{e}, 'm1000@acme.com', 'Redis holds the batch');
is_deeply(json_decode($h{m}), { batch => 'b', t => [ map { $_ % 10 } 1 .. 470 ] }, "the item's metadata as sent");
is($R->get('sd:{acme}:order:n'), 1000, 'one customer per item');

done_testing;
