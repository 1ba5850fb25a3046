# A Redis Cluster's faults under load (issue 11): the slots of the apps being
# written move to another master while writers run (MIGRATING/IMPORTING,
# keys moved a few at a time, then SETSLOT NODE: ASK, TRYAGAIN, MOVED on the
# way): no failed request, every customer as its last acknowledged write
# left it, the invariants hold, batches of two items claiming one email
# resolve in request order. A master SIGKILLed under load with
# supportdesk_redis_wait 1: only the apps of its slots see errors, only 503,
# only until nginx knows the promoted replica; no acknowledged write lost.
# Configuration: cluster pass only (SD_CLUSTER=1: 3 masters, 3 replicas,
# node timeout 2 s); 1 worker; supportdesk_redis_timeout 3s.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use POSIX ();
use SupportDesk::Test qw(envelope_ok wait_until cluster_mode json_decode);
use SupportDesk::Cluster;

plan(skip_all => 'cluster pass only: its faults are a Redis Cluster\'s (SD_CLUSTER=1, make test-cluster)')
    unless cluster_mode();

my $WRITERS = 4;

# apps, two on each master, by their slot
sub apps_by_master {
    my ($c) = @_;
    my %by;
    for my $i (1 .. 200) {
        my $app = "app$i";
        my $m = $c->master_of_key("sd:{$app}:c:x");
        push @{ $by{$m} }, $app if @{ $by{$m} // [] } < 2;
        last if 3 == grep { @{ $by{$_} } == 2 } keys %by;
    }
    return \%by;
}

# One writer: a keep-alive HTTP/1.1 connection, PATCH after PATCH of its
# customers (w<n>_<k>, name "v<version>", each version once), one line per
# answer in its file: "<time> <app> <externalId> <version> <status> <code>".
# Runs until $stop exists. A child: it leaves with _exit, never through the
# harness's END (which would stop the servers).
sub start_writer {
    my ($env, $n, $app, $key, $file, $stop) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    open my $out, '>', $file or POSIX::_exit(2);
    $out->autoflush(1);
    my ($s, $v) = (undef, 0);
    while (!-e $stop) {
        my $ext = "w${n}_" . ($v % 10);
        $v++;
        $s //= IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->port, Timeout => 10);
        if (!$s) { sleep 0.05; next }
        my $body = qq({"email":"$ext\@$app.example.com","name":"v$v"});
        print $s "PATCH /api/v1/customers/$ext HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n"
               . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
        my ($status, $code, $close) = read_answer($s);
        if (!defined $status) { print $out sprintf("%.3f %s %s %d none -\n", time, $app, $ext, $v); undef $s; next }
        print $out sprintf("%.3f %s %s %d %d %s\n", time, $app, $ext, $v, $status, $code // '-');
        undef $s if $close;    # keepalive_requests reached, or an error answer
    }
    close $out;
    POSIX::_exit(0);
}

sub read_answer {
    my ($s) = @_;
    my $head = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    my ($status, $len, $body);
    my $ok = eval {
        alarm 10;
        while ($head !~ /\r\n\r\n/) { my $r = sysread($s, $head, 4096, length $head); die "eof\n" unless $r }
        ($head, $body) = split /\r\n\r\n/, $head, 2;
        ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
        ($len) = $head =~ /^content-length:\s*(\d+)/mi;
        while (length($body) < ($len // 0)) { my $r = sysread($s, $body, 65536, length $body); die "eof\n" unless $r }
        alarm 0;
        1;
    };
    alarm 0;
    return unless $ok && defined $status;
    my $j = json_decode($body);
    return ($status, $j && !$j->{success} ? $j->{error}{code} : undef, $head =~ /^connection:\s*close/mi ? 1 : 0, $j);
}

# A batch writer: batch after batch of two new customers claiming one email
# (b<n>a, then b<n>b with it in capitals), one line per answer:
# "<time> <app> <n> <status> <first item> <second item>" (created, or the
# item's error code). Request order says the first gets the email, the
# second CUSTOMER_EMAIL_EXISTS, even when the items are redirected apart.
# At most 100 batches, 20 ms apart: each adds a customer to the slot being
# moved, and the app's writes wait for the whole move (a write script names
# a key not there yet: Redis answers TRYAGAIN until the slot is stable),
# which must fit in the timeout.
sub start_batch_writer {
    my ($env, $app, $key, $file, $stop) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    open my $out, '>', $file or POSIX::_exit(2);
    $out->autoflush(1);
    my ($s, $n) = (undef, 0);
    while (!-e $stop && $n < 100) {
        $n++;
        sleep 0.02;
        $s //= IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env->port, Timeout => 10);
        if (!$s) { sleep 0.05; next }
        my $body = qq({"customers":[{"externalId":"b${n}a","email":"z$n\@$app.example.com","name":"first"},)
                 . qq({"externalId":"b${n}b","email":"Z$n\@$app.example.com","name":"second"}]});
        print $s "PATCH /api/v1/customers HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n"
               . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
        my ($status, $code, $close, $j) = read_answer($s);
        my @item = map {
            my $x = $j && $j->{data} && $j->{data}{results} ? $j->{data}{results}[$_] : undef;
            !$x ? '-' : $x->{success} ? ($x->{wasCreated} ? 'created' : 'updated') : $x->{error}{code} // '?'
        } 0, 1;
        print $out sprintf("%.3f %s %d %s %s %s\n", time, $app, $n, $status // 'none', @item);
        undef $s if !defined $status || $close;
    }
    close $out;
    POSIX::_exit(0);
}

sub run_load {
    my ($env, $apps, $keys, $during) = @_;
    my $dir = $env->tmp;
    my $stop = "$dir/stop";
    unlink $stop;
    my @pids;
    my $n = 0;
    for my $app (@$apps) {
        for (1 .. $WRITERS / 2) {
            $n++;
            push @pids, start_writer($env, $n, $app, $keys->{$app}, "$dir/writer$n", $stop);
        }
    }
    my $t0 = time;
    my $info = $during->($t0);
    open my $fh, '>', $stop or die;
    close $fh;
    waitpid $_, 0 for @pids;
    my @lines;
    for my $i (1 .. $n) {
        open my $in, '<', "$dir/writer$i" or next;
        push @lines, map { chomp; [split / /] } <$in>;
    }
    return (\@lines, $info);
}

# every customer as its last acknowledged write left it (or as a later
# write, answered or not, may have left it: never older)
sub stored_as_acknowledged {
    my ($env, $name, $lines, $keys) = @_;
    my (%acked, %tried);
    for my $l (@$lines) {
        my ($t, $app, $ext, $v, $st) = @$l;
        $tried{"$app $ext"} = $v if ($tried{"$app $ext"} // 0) < $v;
        $acked{"$app $ext"} = $v if $st eq '200' && ($acked{"$app $ext"} // 0) < $v;
    }
    my @bad;
    for my $id (sort keys %acked) {
        my ($app, $ext) = split / /, $id;
        my $r = $env->api('GET', $ext, $keys->{$app});
        my ($got) = ($r->{json}{data}{customer}{name} // '') =~ /^v(\d+)$/;
        push @bad, "$id: stored " . ($got // 'nothing') . ", last acknowledged $acked{$id}"
            unless defined $got && $got >= $acked{$id} && $got <= $tried{$id};
    }
    ok(!@bad, "$name: each of " . scalar(keys %acked) . ' customers holds its last acknowledged write (or a later one)')
        or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];
    $env->invariants_ok($_) for sort keys %$keys;
}

sub count { my ($lines, $cb) = @_; scalar grep { $cb->(@$_) } @$lines }

# ---------------------------------------------------------------- live reshard
{
    my $env = SupportDesk::Test->new(redis_timeout => '3s');
    my $c = $env->cluster;
    my $by = apps_by_master($c);
    my @masters = sort keys %$by;
    my ($from, $to) = @masters[0, 1];
    my @moving = @{ $by->{$from} };
    my @apps = (@moving, $by->{$to}[0]);
    my %keys = map { $_ => $env->create_key($_) } @apps;

    my $batches = $env->tmp . '/batches';
    my $batcher;
    my ($lines, $moved) = run_load($env, \@apps, \%keys, sub {
        $batcher = start_batch_writer($env, $moving[0], $keys{$moving[0]}, $batches, $env->tmp . '/stop');
        sleep 0.5;
        my $n = 0;
        for my $app (@moving) {
            my $slot = SupportDesk::Cluster::keyslot($app);
            $c->begin_migration($slot, $to);
            # a few keys at a time, the writers going on between: ASK for the
            # keys already moved, TRYAGAIN for a script whose keys are split
            while (my $k = $c->migrate_keys($slot, 3)) { $n += $k; sleep 0.05 }
            $c->end_migration($slot);
        }
        sleep 0.5;    # MOVED for every request of the moved apps until nginx's map has them
        return $n;
    });
    my $total = @$lines;
    my $failed = count($lines, sub { $_[4] ne '200' });
    diag sprintf 'live reshard: %d requests, %d keys migrated, %d failed', $total, $moved, $failed;
    cmp_ok($moved, '>', 0, 'reshard: keys were migrated while the writers ran');
    cmp_ok(count($lines, sub { $_[1] eq $moving[0] }), '>', 20, 'reshard: the moved apps were written throughout');
    is($failed, 0, 'reshard: no request failed') or diag join "\n", map { "@$_" } grep { $_->[4] ne '200' } @$lines[0 .. 9];
    is($c->master_of_key("sd:{$_}:c:x"), $to, "$_ now lives on $to") for @moving;

    # the batches of two items claiming one email: resolved in request order
    waitpid $batcher, 0;
    open my $bf, '<', $batches or die "$batches: $!";
    my @b = map { chomp; [split / /] } <$bf>;
    close $bf;
    my @not_200 = grep { $_->[3] ne '200' || "@$_[4, 5]" =~ /SERVICE_UNAVAILABLE|GATEWAY_TIMEOUT|-/ } @b;
    my @out_of_order = grep { $_->[3] eq '200' && ($_->[4] ne 'created' || $_->[5] ne 'CUSTOMER_EMAIL_EXISTS') } @b;
    diag sprintf 'live reshard: %d batches of two items claiming one email', scalar @b;
    cmp_ok(scalar @b, '>', 20, 'reshard: batches ran throughout');
    is(scalar @not_200, 0, 'reshard: every batch answered 200, no item 503 or 504') or diag join "\n", map { "@$_" } @not_200[0 .. ($#not_200 < 9 ? $#not_200 : 9)];
    is(scalar @out_of_order, 0, 'reshard: in every batch the first item got the email, the second CUSTOMER_EMAIL_EXISTS')
        or diag join "\n", map { "@$_" } @out_of_order[0 .. ($#out_of_order < 9 ? $#out_of_order : 9)];
    my @wrong;
    for my $l (grep { $_->[3] eq '200' } @b) {
        my $n = $l->[2];
        my $first = $env->api('GET', "b${n}a", $keys{$moving[0]});
        my $second = $env->api('GET', "b${n}b", $keys{$moving[0]});
        push @wrong, "batch $n: b${n}a " . ($first->{json}{data}{customer}{email} // $first->{status})
                   . ", b${n}b $second->{status}"
            unless ($first->{json}{data}{customer}{email} // '') eq "z$n\@$moving[0].example.com"
                && $second->{status} == 404;
    }
    is(scalar @wrong, 0, 'reshard: stored as answered: the first of each batch holds the email, the second was never created')
        or diag join "\n", @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)];
    stored_as_acknowledged($env, 'reshard', $lines, \%keys);
    for my $app (@moving) {
        ok($c->node_has_key($to, "sd:{$app}:c:w1_0") || $c->node_has_key($to, "sd:{$app}:c:w3_0"),
           "$app: its customers are on the new master");
    }
}

# ---------------------------------------------------------------- a master killed
# $wait: supportdesk_redis_wait 1. Then the promoted replica has no replica
# of its own, so its writes are 503 (acknowledged by none) until the killed
# node comes back and rejoins as its replica: the writers go on until then.
sub kill_under_load {
    my ($wait) = @_;
    my $name = $wait ? 'a master killed, supportdesk_redis_wait 1' : 'a master killed';
    my $env = SupportDesk::Test->new(redis_timeout => '3s', $wait ? (http_conf => 'supportdesk_redis_wait 1 1s;') : ());
    my $c = $env->cluster;
    my $by = apps_by_master($c);
    my @masters = sort keys %$by;
    my $victim = $masters[0];
    my @hit = ($by->{$victim}[0]);
    my @spared = map { $by->{$_}[0] } @masters[1, 2];
    my %keys = map { $_ => $env->create_key($_) } @hit, @spared;
    my %hit = map { $_ => 1 } @hit;

    my ($lines, $p) = run_load($env, [@hit, @spared], \%keys, sub {
        sleep 1;
        my $t = time;
        my $new = $c->kill_master($victim);
        my $took = time - $t;
        $c->start_node($victim) if $wait;
        my $back = time - $t;
        # until each writer of the hit app has been answered 200 again
        my $dir = $env->tmp;
        wait_until(sub {
            my $ok = 0;
            for my $f (glob "$dir/writer*") {
                open my $in, '<', $f or next;
                my $served = grep { /^(\S+) (\S+) \S+ \d+ 200 / && $1 > $t + $back && $hit{$2} } <$in>;
                $ok++ if $served;
            }
            $ok >= $WRITERS / 2;
        }, 30, 0.1);
        sleep 0.5;
        return { at => $t, took => $took, back => $back, new => $new };
    });
    diag sprintf '%s: %s killed, replica %s promoted %.1f s later%s', $name, $victim, $p->{new}, $p->{took},
        $wait ? sprintf(', the killed node back as its replica at %.1f s', $p->{back}) : '';
    my @spared_bad = grep { !$hit{$_->[1]} && $_->[4] ne '200' } @$lines;
    is(scalar @spared_bad, 0, "$name: no error for the apps on the other masters (" . count($lines, sub { !$hit{$_[1]} }) . ' requests)')
        or diag join "\n", map { "@$_" } @spared_bad[0 .. ($#spared_bad < 9 ? $#spared_bad : 9)];
    my @hit_bad = grep { $hit{$_->[1]} && $_->[4] ne '200' } @$lines;
    is_deeply([ sort keys %{{ map { ("$_->[4] $_->[5]" => 1) } @hit_bad }} ], ['503 SERVICE_UNAVAILABLE'],
              "$name: its own app: errors, and only 503 SERVICE_UNAVAILABLE");
    if (@hit_bad) {
        my @t = sort { $a <=> $b } map { $_->[0] } @hit_bad;
        diag sprintf '%s: its app: %d errors of %d requests, from %.2f s to %.2f s after the kill',
            $name, scalar @hit_bad, count($lines, sub { $hit{$_[1]} }), $t[0] - $p->{at}, $t[-1] - $p->{at};
    }
    # one worker: once it has the new map (and, with wait, a replica is
    # back), the app is served on
    my ($first_ok) = map { $_->[0] } grep { $hit{$_->[1]} && $_->[4] eq '200' && $_->[0] > $p->{at} + $p->{back} }
                     sort { $a->[0] <=> $b->[0] } @$lines;
    ok(defined $first_ok, "$name: its app is served again without a reload");
    my @late = grep { $hit{$_->[1]} && $_->[4] ne '200' && defined $first_ok && $_->[0] > $first_ok + 0.01 } @$lines;
    is(scalar @late, 0, "$name: once served again, no error any more")
        or diag join "\n", map { "@$_" } @late[0 .. ($#late < 9 ? $#late : 9)];
    # without WAIT an acknowledged write may not have reached the replica
    # that was promoted: only the invariants are checked then
    if ($wait) { stored_as_acknowledged($env, $name, $lines, \%keys) }
    else       { $env->invariants_ok($_) for sort keys %keys }
}

kill_under_load(0);
kill_under_load(1);

done_testing;
