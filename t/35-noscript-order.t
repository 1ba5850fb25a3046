# Commands apply in the order they were sent, also when Redis loses its
# scripts (SCRIPT FLUSH, a failover to a fresh replica) and answers
# NOSCRIPT: batches of pairs of items claiming one email, sent while another
# client runs SCRIPT FLUSH every 20 ms. Each pair's first item must get the
# email and the second CUSTOMER_EMAIL_EXISTS, as a sequential model says;
# no request and no item may fail otherwise.
# Configuration: worker_processes 2, supportdesk_redis_timeout 10s (two
# workers, four Redis connections, each reloading the scripts when it
# resends: the other connections meet a script cache that comes and goes).
# SD_NOSCRIPT_PAIRS (default 20000) sets the number of pairs.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use POSIX ();
use SupportDesk::Test qw(envelope_ok json_encode wait_until single_redis_only);

single_redis_only('SCRIPT FLUSH on the one Redis under load (NOSCRIPT per node keeps its order: the cluster tests\')');

my $PAIRS    = $ENV{SD_NOSCRIPT_PAIRS} || 20000;
my $PER      = 500;                 # pairs per batch: 1000 items
my $PARALLEL = 4;                   # batches in flight at once
my $env = SupportDesk::Test->new(worker_processes => 2, redis_timeout => '10s');
my $key = $env->create_key('acme', 'noscript order');
my $R = $env->redis;

# another client flushes the script cache every 20 ms until told to stop
my $flusher = fork // die "fork: $!";
if (!$flusher) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->redis_port) or POSIX::_exit(1);
    my $stop = 0;
    $SIG{TERM} = sub { $stop = 1 };
    while (!$stop) {
        print $s "SCRIPT FLUSH\r\n";
        sysread $s, my $buf, 100;
        sleep 0.02;
    }
    POSIX::_exit(0);
}
my $flushes_before = $R->info('commandstats')->{'cmdstat_script|flush'} // '';

my $MESSAGE = $SupportDesk::Test::MESSAGE{CUSTOMER_EMAIL_EXISTS};
my $TAKEN = [email => 'is already used by another customer'];
my (@reversed, @wrong, @failed);
my $t0 = time;
my $nbatch = int(($PAIRS + $PER - 1) / $PER);
my @todo = 1 .. $nbatch;
while (my @round = splice @todo, 0, $PARALLEL) {
    my @req = map {
        my $b = $_;
        my @items = map { my $i = $_; (
            { externalId => "p${b}_${i}_a", email => "e${b}_$i\@pairs.example", name => "First $i" },
            { externalId => "p${b}_${i}_b", email => "E${b}_$i\@Pairs.example", name => "Second $i" },
        ) } 1 .. $PER;
        $env->http_bytes('PATCH', '/api/v1/customers', headers => { 'X-API-Key' => $key },
                         body => { customers => \@items });
    } @round;
    my @res = $env->parallel(\@req, timeout => 60);
    for my $k (0 .. $#round) {
        my ($b, $r) = ($round[$k], $res[$k]);
        if ($r->{status} != 200 || ref $r->{json}{data}{results} ne 'ARRAY') {
            push @failed, "batch $b: $r->{status} " . substr($r->{body} // $r->{error} // '', 0, 300);
            next;
        }
        my $res = $r->{json}{data}{results};
        for my $i (1 .. $PER) {
            my ($a, $z) = @$res[2 * $i - 2, 2 * $i - 1];
            my $a_ok = $a && $a->{success} && $a->{wasCreated} && $a->{externalId} eq "p${b}_${i}_a";
            my $z_ok = $z && !$z->{success} && $z->{externalId} eq "p${b}_${i}_b"
                && ($z->{error}{code} // '') eq 'CUSTOMER_EMAIL_EXISTS' && ($z->{error}{message} // '') eq $MESSAGE
                && !SupportDesk::Test::details_problems($z->{error}{details}, [$TAKEN]);
            next if $a_ok && $z_ok;
            if ($a && $z && !$a->{success} && ($a->{error}{code} // '') eq 'CUSTOMER_EMAIL_EXISTS' && $z->{success}) {
                push @reversed, "batch $b pair $i";
            } elsif (grep { $_ && !$_->{success} && ($_->{error}{code} // '') !~ /^CUSTOMER_EMAIL_EXISTS\z/ } $a, $z) {
                push @failed, "batch $b pair $i: " . json_encode([$a, $z]);
            } else {
                push @wrong, "batch $b pair $i: " . json_encode([$a, $z]);
            }
        }
    }
}
my $took = time - $t0;
kill 'TERM', $flusher;
waitpid $flusher, 0;
my $flushes = ($R->info('commandstats')->{'cmdstat_script|flush'} // '') =~ /calls=(\d+)/ ? $1 : 0;
my ($before) = $flushes_before =~ /calls=(\d+)/;
$flushes -= $before // 0;
my $resent = () = $env->nginx_error_log =~ /supportdesk: redis \S+ lost (?:its scripts|script)/g;
diag sprintf '%d pairs in %d batches in %.1f s, %d SCRIPT FLUSHes, %d NOSCRIPT log lines',
    $PAIRS, $nbatch, $took, $flushes, $resent;
cmp_ok($flushes, '>=', 10, 'Redis lost its scripts many times meanwhile');
cmp_ok($resent, '>=', 1, 'the module met NOSCRIPT and resent');

ok(!@failed, 'no request and no item failed') or diag join "\n", @failed[0 .. ($#failed < 9 ? $#failed : 9)], scalar(@failed) . ' failed';
ok(!@reversed, 'no pair came out reversed: every first item got the email')
    or diag scalar(@reversed) . " reversed: @reversed[0 .. ($#reversed < 9 ? $#reversed : 9)]";
ok(!@wrong, 'every other result as the model says') or diag join "\n", @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)];

# Redis agrees: each email belongs to the first of its pair, the second
# was never created
my %emails = %{ $env->email_index('acme') };
my (@owner, @second);
for my $b (1 .. $nbatch) {
    for my $i (1 .. $PER) {
        my $o = $emails{"e${b}_$i\@pairs.example"} // 'nobody';
        push @owner, "e${b}_$i: $o" if $o ne "p${b}_${i}_a";
    }
}
ok(!@owner, 'Redis: every email belongs to the first item of its pair')
    or diag scalar(@owner) . " wrong: @owner[0 .. ($#owner < 9 ? $#owner : 9)]";
is($env->customer_count('acme'), $nbatch * $PER, 'Redis: one customer per pair');
$env->invariants_ok('acme');

done_testing;
