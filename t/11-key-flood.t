# Unknown-key floods (issue 10 item 4). Good keys and unknown keys live
# apart in the key cache: a flood of distinct unknown keys never evicts a
# good key. Redis lookups of keys the cache does not know are bounded per
# worker and second (supportdesk_key_lookup_rate); past the bound such a
# key is 401 without a lookup, while a key the cache knew as good is always
# looked up again. conf/legacy-helpdesk.conf limits requests without a
# known key by client address before any lookup. And the keys-per-MiB
# figure of README is the one measured here.
# Configuration: four environments, 1 worker each, keepalive_requests
# 10000000 (the requests of a flood share a few connections): the default zone (1m)
# with supportdesk_key_cache_ttl 600s; the same with a negative ttl of 600s
# and no practical lookup bound; supportdesk_key_cache_ttl 1s with
# supportdesk_key_lookup_rate 20; and conf/legacy-helpdesk.conf's limits.
# SD_KEY_FLOOD sets the size of the big flood (default 20000).
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(envelope_ok);

my $FLOOD = $ENV{SD_KEY_FLOOD} || 20000;
# every list of pipelined() on one connection
my $KA = 'keepalive_requests 10000000;';
# README, supportdesk_key_cache_size: "about N keys per MiB"
my $PER_MIB = 7000;

sub random_key { 'sdk_' . join('', map { sprintf '%02x', int rand 256 } 1 .. 16) }

# GET /customers?limit=0 is refused (400) once the key is known, before
# any storage work: every Redis command these requests cause is the key's
sub req {
    my ($key) = @_;
    return "GET /api/v1/customers?limit=0 HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n";
}

sub hgets {
    my ($env) = @_;
    my $s = $env->redis->info('commandstats');
    return ($s->{cmdstat_hget} // '') =~ /calls=(\d+)/ ? $1 : 0;
}

# Each list of requests on one keep-alive connection, pipelined (nginx
# answers them in order, one at a time); the connections side by side.
# Returns the answers of each list: [{status, body}, ...] per list.
sub pipelined {
    my ($env, $lists, $timeout) = @_;
    $timeout //= 300;
    local $SIG{PIPE} = 'IGNORE';
    my @c;
    for my $l (@$lists) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->port, Proto => 'tcp')
            or BAIL_OUT("connect: $!");
        $s->blocking(0);
        push @c, { s => $s, out => join('', @$l), off => 0, in => '', want => scalar(@$l), res => [] };
    }
    my $deadline = time + $timeout;
    while (grep { @{ $_->{res} } < $_->{want} && !$_->{eof} } @c) {
        last if time > $deadline;
        my ($rin, $win) = ('', '');
        for my $x (grep { @{ $_->{res} } < $_->{want} && !$_->{eof} } @c) {
            vec($rin, fileno $x->{s}, 1) = 1;
            vec($win, fileno $x->{s}, 1) = 1 if $x->{off} < length $x->{out};
        }
        select(my $rout = $rin, my $wout = $win, undef, 1) > 0 or next;
        for my $x (@c) {
            my $fd = fileno $x->{s};
            if (vec($wout, $fd, 1)) {
                my $n = syswrite($x->{s}, $x->{out}, 65536, $x->{off});
                $x->{off} += $n if $n;
            }
            next unless vec($rout, $fd, 1);
            my $n = sysread($x->{s}, my $chunk, 262144);
            if (!$n) { $x->{eof} = 1; next }
            $x->{in} .= $chunk;
            while ((my $i = index($x->{in}, "\r\n\r\n")) >= 0) {
                my $head = substr($x->{in}, 0, $i);
                my ($status) = $head =~ m{^HTTP/1\.1 (\d{3})};
                my ($len) = $head =~ /\r\ncontent-length:\s*(\d+)/i;
                BAIL_OUT("an answer without Content-Length: $head") unless defined $len;
                last if length($x->{in}) < $i + 4 + $len;
                my (undef, @hl) = split /\r\n/, $head;
                my %h = map { /^([^:]+):\s*(.*?)\s*$/ ? (lc $1 => $2) : () } @hl;
                push @{ $x->{res} }, { status => $status, headers => \%h, body => substr($x->{in}, $i + 4, $len) };
                $x->{in} = substr($x->{in}, $i + 4 + $len);
            }
        }
    }
    close $_->{s} for @c;
    return map { $_->{res} } @c;
}

# the statuses of all answers, as "N x status, ..."
sub tally {
    my %n;
    $n{ $_->{status} }++ for map { @$_ } @_;
    return join ', ', map { "$n{$_} x $_" } sort keys %n;
}
sub count_status {
    my ($status, @lists) = @_;
    return scalar grep { $_->{status} == $status } map { @$_ } @lists;
}
sub split_in {
    my ($n, @items) = @_;
    my @l = map { [] } 1 .. $n;
    push @{ $l[$_ % $n] }, $items[$_] for 0 .. $#items;
    return @l;
}

# ---- keys per MiB: K good keys in order, then in the opposite order; the
# second pass finds the most recent ones cached (each miss then evicts one
# already asked again), so its lookups are K - capacity
{
    my $env = SupportDesk::Test->new(http_conf => "$KA supportdesk_key_cache_ttl 600s;");
    my $K = int($PER_MIB * 1.5);
    my @keys = map { $env->create_key('acme', "k$_") } 1 .. $K;
    my ($first) = pipelined($env, [[ map { req($_) } @keys ]]);
    is(count_status(400, $first), $K, "$K good keys, each answered after its lookup (" . tally($first) . ')');
    my $h0 = hgets($env);
    my ($second) = pipelined($env, [[ map { req($_) } reverse @keys ]]);
    is(count_status(400, $second), $K, 'the second pass too');
    my $cap = $K - (hgets($env) - $h0);
    diag "the default key cache (supportdesk_key_cache_size 1m) holds $cap keys";
    cmp_ok($cap, '>=', $PER_MIB, "a 1m key cache holds at least $PER_MIB keys (README)");
    cmp_ok($cap, '<', $PER_MIB * 1.15, 'and README does not undersell it by more than 15%');
}

# ---- unknown keys never evict good ones: every unknown key is looked up
# and cached as unknown (bound out of the way), the good keys stay
{
    my $env = SupportDesk::Test->new(http_conf => "$KA supportdesk_key_cache_ttl 600s;"
        . ' supportdesk_key_cache_negative_ttl 600s; supportdesk_key_lookup_rate 1000000;');
    my @good = map { $env->create_key('acme', "g$_") } 1 .. 1000;
    my ($warm) = pipelined($env, [[ map { req($_) } @good ]]);
    is(count_status(400, $warm), 1000, '1000 good keys cached');
    my $h0 = hgets($env);
    my $t0 = time;
    my @flood = pipelined($env, [ split_in(8, map { req(random_key()) } 1 .. $FLOOD) ]);
    my $t = time - $t0;
    my $looked = hgets($env) - $h0;
    is(count_status(401, @flood), $FLOOD, "$FLOOD distinct unknown keys: every one 401 (" . tally(@flood) . ')');
    diag sprintf '%d unknown keys in %.1f s: %d Redis lookups', $FLOOD, $t, $looked;
    is($looked, $FLOOD, 'each looked up once (no bound here)');
    $env->record_answer(req('sdk_unknown'), $flood[0][0]);
    $h0 = hgets($env);
    my ($again) = pipelined($env, [[ map { req($_) } @good ]]);
    is(count_status(400, $again), 1000, 'the good keys still work');
    diag sprintf 'the 1000 good keys again: %d Redis lookups', hgets($env) - $h0;
    is(hgets($env) - $h0, 0, 'and none of them needed a Redis lookup: the flood evicted no good key');
}

# ---- the bound: at most supportdesk_key_lookup_rate lookups of unknown
# keys per second; past it 401 without a lookup. Keys the cache knew as
# good are looked up again, whatever the flood.
{
    my $env = SupportDesk::Test->new(http_conf => "$KA supportdesk_key_cache_ttl 1s; supportdesk_key_lookup_rate 20;");
    my @good = map { $env->create_key('acme', "s$_") } 1 .. 50;
    my ($warm) = pipelined($env, [[ map { req($_) } @good ]]);
    is(count_status(400, $warm), 50, '50 good keys, looked up one after the other: within the bound');
    my $n = 5000;
    my $h0 = hgets($env);
    my $t0 = time;
    my @flood = pipelined($env, [ split_in(8, map { req(random_key()) } 1 .. $n) ]);
    my $t = time - $t0;
    my $looked = hgets($env) - $h0;
    is(count_status(401, @flood), $n, "$n unknown keys: every one 401 (" . tally(@flood) . ')');
    # the bound counts per second of the worker's clock: a run of t seconds
    # touches at most int(t) + 2 of them
    my $max = 20 * (int($t) + 2);
    diag sprintf '%d unknown keys in %.1f s: %d Redis lookups (bound %d)', $n, $t, $looked, $max;
    cmp_ok($looked, '<=', $max, "at most 20 lookups a second ($looked in ${\ sprintf '%.1f', $t} s)");
    like($env->nginx_error_log, qr/unknown API keys refused without a lookup/, 'the refusals are logged');

    # past their ttl the good keys must be asked again; each comes right
    # behind unknown keys that spend the second's lookups
    sleep 1.5;
    my @rounds = map { [ (map { req(random_key()) } 1 .. 25), map { req($_) } @good[5 * $_ .. 5 * $_ + 4] ] } 0 .. 9;
    my @res = pipelined($env, \@rounds);
    is(scalar(grep { $_->{status} == 400 } map { @$_[25 .. 29] } @res), 50,
       'every key known as good is looked up again behind the flood (' . tally(map { [ @$_[25 .. 29] ] } @res) . ')');
    is(scalar(grep { $_->{status} == 401 } map { @$_[0 .. 24] } @res), 250, 'the unknown ones: 401');
}

# ---- conf/legacy-helpdesk.conf: requests without a known key are limited
# by client address, before the module looks a key up
{
    open my $fh, '<', SupportDesk::Test::repo_root() . '/conf/legacy-helpdesk.conf' or die $!;
    my $conf = do { local $/; <$fh> };
    my ($map) = $conf =~ /^\s*(map \$supportdesk_app \$\w+ \{.*?\})/ms;
    my ($zone) = $conf =~ /^\s*(limit_req_zone \$sd_unknown_key_addr [^;]*;)/m;
    my ($limit) = $conf =~ /^\s*(limit_req zone=sd_unknown_keys [^;]*;)/m;
    my ($status) = $conf =~ /^\s*(limit_req_status \d+;)/m;
    ok($map && $zone && $limit && $status, 'the conf has the map, the zone, the limit and its status')
        or diag "map: " . ($map // '-') . "\nzone: " . ($zone // '-') . "\nlimit: " . ($limit // '-');
    my ($rate) = ($zone // '') =~ /rate=(\d+)r\/s/;
    my ($burst) = ($limit // '') =~ /burst=(\d+)/;
    my $env = SupportDesk::Test->new(http_conf => "$KA $map $zone $status", location_conf => $limit);
    my $good = $env->create_key('acme', 'known');
    my ($w) = pipelined($env, [[ req($good) ]]);
    is($w->[0]{status}, 400, 'a good key');
    my $h0 = hgets($env);
    my $t0 = time;
    my ($flood) = pipelined($env, [[ (map { req(random_key()) } 1 .. 300), req($good) ]]);
    my $t = time - $t0;
    my $looked = hgets($env) - $h0;
    my $limited = count_status(429, [ @$flood[0 .. 299] ]);
    diag sprintf '300 unknown keys from one address in %.2f s: %d x 429, %d lookups', $t, $limited, $looked;
    ok($limited >= 300 - ($burst + 1) - $rate * ($t + 1), "past the burst ($burst) they are 429 (" . tally($flood) . ')');
    is(count_status(401, [ @$flood[0 .. 299] ]) + $limited, 300, 'the others 401');
    cmp_ok($looked, '<=', 300 - $limited, 'a 429 costs no lookup');
    is($flood->[300]{status}, 400, "the good key from the same address is not limited");
    $env->record_answer(req('sdk_limited'), (grep { $_->{status} == 429 } @$flood)[0] || $flood->[0]);
}

done_testing;
