package SupportDesk::FakeRedis;

# A scripted fake Redis server for the tests of a misbehaving Redis: it
# listens on a free loopback port (in a child process), answers the module's
# handshake (AUTH, SELECT, SCRIPT LOAD, the ACL probes) like Redis, and
# answers every other command with what the test's responder returns.
#
#   my $fake = SupportDesk::FakeRedis->new(respond => sub {
#       my ($cmd, $conn) = @_;   # [name, args...], the connection's number
#       return "\$4\r\nacme\r\n";              # bytes to send, as they are
#       return { head => "\$999999999\r\n",   # bytes, then `fill` bytes of
#                fill => 200 * 1024 * 1024 };  # 'x' as fast as the peer reads
#       return { close => 1 };                 # close the connection
#       return { head => "*0\r\n",            # bytes held back that long
#                delay => 0.5 };               # (seconds), and everything the
#                                              # connection sends after them
#       return undef;                          # -ERR fake: unscripted command
#   });
#   $fake->port;
#   $fake->commands;   # every command received so far, one a line: "conn
#                      # name arg1 ..." (arguments cut at 80 bytes, CR, LF
#                      # and backslash as \x0d \x0a \x5c)
#   $fake->ready;      # connections open that have had their handshake
#                      # answered (the last of it, the EVALSHA probe)
#   $fake->stop;       # also when it goes out of scope or at END
#
# The responder runs in the child: it may keep state of its own there (a
# counter, which connection got what), the test only sees `commands`.
# Core Perl only.

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(sha1_hex);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use File::Temp qw(tempdir);
use IO::Handle;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my %LIVE;

sub new {
    my ($class, %o) = @_;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', Listen => 128, ReuseAddr => 1) or croak "fake redis: listen: $!";
    my $dir = tempdir('sd-fake-redis-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $log = "$dir/commands";
    my $self = bless { port => $listen->sockport, log => $log, owner => $$ }, $class;
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE);
        $SIG{PIPE} = 'IGNORE';
        eval { _serve($listen, $log, $o{respond} || sub { undef }) };
        POSIX::_exit(0);
    }
    close $listen;
    $self->{pid} = $pid;
    $LIVE{$pid} = $self;
    return $self;
}

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }

sub ready {
    my ($self) = @_;
    open my $fh, '<', "$self->{log}.ready" or return 0;
    my $n = <$fh>;
    return ($n // 0) + 0;
}

sub commands {
    my ($self) = @_;
    open my $fh, '<', $self->{log} or return ();
    chomp(my @l = <$fh>);
    return @l;
}

sub stop {
    my ($self) = @_;
    local ($?, $!);
    my $pid = delete $self->{pid} or return;
    return unless $$ == $self->{owner};
    delete $LIVE{$pid};
    kill 'TERM', $pid;
    my $end = time + 3;
    while (time < $end) {
        my $r = waitpid($pid, WNOHANG);
        return if $r == $pid || $r == -1;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub DESTROY { $_[0]->stop }
END { $_->stop for values %LIVE }

# --- the child

# one complete command of RESP ("*N\r\n$len\r\narg\r\n..." or an inline
# line) off the front of $$buf, as [args], or undef when incomplete
sub _parse {
    my ($buf) = @_;
    return undef unless length $$buf;
    if (substr($$buf, 0, 1) ne '*') {
        my $i = index($$buf, "\r\n");
        return undef if $i < 0;
        my $line = substr($$buf, 0, $i + 2, '');
        $line =~ s/\r\n\z//;
        return [ split ' ', $line ];
    }
    my $i = index($$buf, "\r\n");
    return undef if $i < 0;
    my ($n) = substr($$buf, 1, $i - 1) =~ /^(-?\d+)$/ or die "bad multibulk\n";
    my $p = $i + 2;
    my @args;
    for (1 .. $n) {
        my $e = index($$buf, "\r\n", $p);
        return undef if $e < 0;
        my ($len) = substr($$buf, $p + 1, $e - $p - 1) =~ /^(\d+)$/ or die "bad bulk\n";
        return undef if length($$buf) < $e + 2 + $len + 2;
        push @args, substr($$buf, $e + 2, $len);
        $p = $e + 2 + $len + 2;
    }
    substr($$buf, 0, $p, '');
    return \@args;
}

sub _bulk { my $s = shift; '$' . length($s) . "\r\n$s\r\n" }

# an argument as logged: 80 bytes at most, CR, LF and \ escaped (\x0d),
# so that a command is one line (a script's source has many)
sub _shown {
    my $s = length $_[0] > 80 ? substr($_[0], 0, 80) . '...' : $_[0];
    $s =~ s/([\\\r\n])/sprintf '\\x%02x', ord $1/ge;
    return $s;
}

# what Redis answers to the module's handshake; undef for anything else
sub _handshake {
    my ($cmd) = @_;
    my $name = uc($cmd->[0] // '');
    return "+OK\r\n" if $name eq 'AUTH' || $name eq 'SELECT';
    return "+PONG\r\n" if $name eq 'PING';
    return _bulk(sha1_hex($cmd->[2] // '')) if $name eq 'SCRIPT' && uc($cmd->[1] // '') eq 'LOAD';
    return "-NOSCRIPT No matching script. Please use EVAL.\r\n"
        if $name eq 'EVALSHA' && ($cmd->[1] // '') =~ /^0{40}\z/;
    return "-ERR Number of keys can't be negative\r\n"
        if $name eq 'EVAL' && ($cmd->[2] // '') eq '-1';
    return undef;
}

sub _serve {
    my ($listen, $log, $respond) = @_;
    open my $lf, '>>', $log or die "$log: $!";
    $lf->autoflush(1);
    $listen->blocking(0);
    my (%c, $n);
    my $chunk = 'x' x 65536;
    my $ready = -1;
    while (1) {
        my $now = grep { $_->{ready} } values %c;
        if ($now != $ready) {
            $ready = $now;
            if (open my $rf, '>', "$log.ready.tmp") { print $rf "$now\n"; close $rf; rename "$log.ready.tmp", "$log.ready" }
        }
        my ($rin, $win) = ('', '');
        my $wait = 1;
        vec($rin, fileno $listen, 1) = 1;
        for my $x (values %c) {
            vec($rin, fileno $x->{s}, 1) = 1;
            my $held = ($x->{hold_until} // 0) - Time::HiRes::time();
            if ($held > 0) {
                $wait = $held if $held < $wait;
                next;
            }
            vec($win, fileno $x->{s}, 1) = 1 if length $x->{out} || $x->{fill};
        }
        my $k = select(my $rout = $rin, my $wout = $win, undef, $wait);
        next if $k <= 0;
        if (vec($rout, fileno $listen, 1)) {
            while (my $s = $listen->accept) {
                $s->blocking(0);
                $n++;
                $c{$n} = { s => $s, n => $n, in => '', out => '', fill => 0 };
            }
        }
        for my $id (sort { $a <=> $b } keys %c) {
            my $x = $c{$id} or next;
            my $fd = fileno $x->{s};
            my $gone = 0;
            if (vec($rout, $fd, 1)) {
                my $r = sysread($x->{s}, my $buf, 65536);
                if (!defined $r && ($!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR})) { }
                elsif (!$r) { $gone = 1 }
                else {
                    $x->{in} .= $buf;
                    while (my $cmd = eval { _parse(\$x->{in}) }) {
                        print $lf join(' ', $x->{n}, map { _shown($_) } @$cmd), "\n";
                        my $a = _handshake($cmd);
                        $x->{ready} = 1 if uc($cmd->[0]) eq 'EVALSHA' && ($cmd->[1] // '') =~ /^0{40}\z/;
                        $a = $respond->($cmd, $x->{n}) unless defined $a;
                        $a = "-ERR fake: unscripted command\r\n" unless defined $a;
                        if (ref $a eq 'HASH') {
                            if ($a->{close}) { $gone = 1; last }
                            $x->{hold_until} = Time::HiRes::time() + $a->{delay} if $a->{delay};
                            $x->{out} .= $a->{head} // '';
                            $x->{fill} += $a->{fill} // 0;
                        } else {
                            $x->{out} .= $a;
                        }
                    }
                    $gone = 1 if $@;
                }
            }
            if (!$gone && vec($wout, $fd, 1)) {
                if (!length $x->{out} && $x->{fill}) {
                    my $m = $x->{fill} < length $chunk ? $x->{fill} : length $chunk;
                    $x->{out} = substr($chunk, 0, $m);
                    $x->{fill} -= $m;
                }
                my $w = syswrite($x->{s}, $x->{out});
                if (defined $w) { substr($x->{out}, 0, $w, '') }
                elsif (!$!{EAGAIN} && !$!{EWOULDBLOCK} && !$!{EINTR}) { $gone = 1 }
            }
            if ($gone) {
                close $x->{s};
                delete $c{$id};
            }
        }
    }
}

1;
