# Reload (HUP) and graceful stop (QUIT) with requests in flight: no crash,
# no dropped request, no "open socket left", new workers serve, old ones exit.
# Configuration: worker_processes 2, supportdesk_redis_timeout 3s.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use SupportDesk::Test qw(envelope_ok wait_until json_encode json_decode single_redis_only);

single_redis_only('HUP and QUIT with requests in flight against the one Redis: nginx\'s side, nothing cluster-specific (the cluster\'s reload cases belong to the cluster tests)');

my $env = SupportDesk::Test->new(worker_processes => 2, redis_timeout => '3s');
my $key = $env->create_key('acme');
my $r = $env->api('PATCH', 'r1', $key, { email => 'r1@example.com', name => 'R One' });
envelope_ok($r, 200, undef, 'setup');

# runs $cb in a child process; returns a sub that waits and gives its result
sub in_child {
    my ($cb) = @_;
    my $file = $env->tmp . '/child.' . int(rand 1e9);
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my $res = eval { $cb->() } // { died => "$@" };
        open my $fh, '>', $file;
        print $fh json_encode($res);
        close $fh;
        POSIX::_exit(0);
    }
    return sub {
        waitpid $pid, 0;
        open my $fh, '<', $file or return { died => 'no result' };
        local $/;
        return json_decode(<$fh>);
    };
}
sub in_flight_requests {
    my ($n, $tag) = @_;
    return [ map { $_ % 2
        ? $env->http_bytes('GET', '/api/v1/customers/r1', headers => { 'X-API-Key' => $key })
        : $env->http_bytes('PATCH', "/api/v1/customers/fl_${tag}_$_", headers => { 'X-API-Key' => $key },
                           body => { email => "fl_${tag}_$_\@example.com", name => 'F' }) } 1 .. $n ];
}
sub strip { my $x = shift; +{ map { $_ => $x->{$_} } qw(status headers body error) } }
# Every request in flight is answered 200: Redis is paused for 1 s, well
# within supportdesk_redis_timeout (3 s), and the old workers finish what
# they have before they exit (neither 503 nor 504 is acceptable here)
sub answered_ok {
    my ($res, $name, $n) = @_;
    is(scalar @{ ref $res eq 'ARRAY' ? $res : [] }, $n, "$name: $n answers");
    for my $x (ref $res eq 'ARRAY' ? @$res : ()) {
        $x->{json} = json_decode($x->{body}) if length($x->{body} // '');
        envelope_ok($x, 200, undef, "$name: answered 200");
    }
    diag "$name: statuses " . join ' ', map { $_->{status} } @$res;
}

# ---- HUP with requests waiting on Redis
my @old = $env->worker_pids;
$env->pause_redis;
my $wait = in_child(sub { [ map { strip($_) } $env->parallel(in_flight_requests(8, 'hup'), timeout => 10) ] });
sleep 0.4;
$env->reload_nginx;
sleep 0.6;
$env->resume_redis;
my $res = $wait->();
is(ref $res, 'ARRAY', 'child returned') or diag explain $res;
answered_ok($res, 'in flight during HUP', 8);

my %old = map { $_ => 1 } @old;
ok(wait_until(sub { !grep { $old{$_} } $env->worker_pids }, 5), 'old workers exit within 5 s')
    or diag "workers: @{[ $env->worker_pids ]} (old: @old)";
my @new = $env->worker_pids;
is(scalar @new, 2, 'two new workers');
$r = $env->api('GET', 'r1', $key);
envelope_ok($r, 200, undef, 'new workers serve');

# ---- steady load while reloading twice
{
    my $load = in_child(sub {
        my @st;
        my $end = time + 2.5;
        my $i = 0;
        while (time < $end) {
            $i++;
            my $x = $i % 2
                ? $env->api('GET', 'r1', $key)
                : $env->api('PATCH', "load_$i", $key, { email => "load$i\@example.com", name => 'L' });
            push @st, $x->{status} == 200 ? 200 : "$x->{status} $x->{body} " . ($x->{error} // '');
        }
        return \@st;
    });
    sleep 0.6;
    $env->reload_nginx;
    sleep 0.8;
    $env->reload_nginx;
    my $st = $load->();
    my @bad = grep { $_ ne '200' } @{ $st || [] };
    cmp_ok(scalar @{ $st || [] }, '>', 20, 'load ran (' . scalar(@{ $st || [] }) . ' requests)');
    is(scalar @bad, 0, 'every request during two reloads answered 200') or diag join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)];
}
$env->invariants_ok('acme');
$r = $env->api('GET', 'r1', $key);
envelope_ok($r, 200, undef, 'serving after the reloads');

# ---- QUIT with requests waiting on Redis
$env->pause_redis;
$wait = in_child(sub { [ map { strip($_) } $env->parallel(in_flight_requests(6, 'quit'), timeout => 10) ] });
sleep 0.4;
my $t = time;
kill 'QUIT', $env->nginx_pid;
sleep 0.6;
$env->resume_redis;
$res = $wait->();
is(ref $res, 'ARRAY', 'child returned');
answered_ok($res, 'in flight during QUIT', 6);
ok($env->stop_nginx(timeout => 10), 'nginx exits after QUIT');
diag sprintf "nginx gone %.2fs after QUIT", time - $t;

my $log = $env->nginx_error_log;
unlike($log, qr/exited on signal/, 'no worker crashed');
unlike($log, qr/open socket .* left in connection/, 'no open socket left')
    or diag join "\n", grep { /left in connection/ } split /\n/, $log;
unlike($log, qr/\[alert\]/, 'no alert') or diag join "\n", grep { /\[alert\]/ } split /\n/, $log;
$env->invariants_ok('acme');

done_testing;
