package SupportDesk::FakeDNS;

# A scripted DNS server for nginx's resolver in the tests: it answers A
# questions over UDP on a free loopback port (in a child process) from a
# table the test changes while it runs.
#
#   my $dns = SupportDesk::FakeDNS->new;
#   $dns->set('redis.sd.test' => '127.0.0.2');      # one or more addresses
#   $dns->set('gone.sd.test' => undef);             # NXDOMAIN
#   $dns->port;                                     # resolver 127.0.0.1:<port>
#   $dns->queries('redis.sd.test');                 # A questions so far
#   $dns->stop;                                     # also at scope exit
#
# Answers carry a TTL of 1 s; a name not in the table is NXDOMAIN; other
# types than A get an empty answer. Core Perl only.

use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();

sub new {
    my ($class) = @_;
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'udp')
        or croak "fake dns: bind: $!";
    my $dir = tempdir('sd-fake-dns-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $self = bless { port => $sock->sockport, dir => $dir, owner => $$ }, $class;
    $self->_write_table({});
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
        eval { _serve($sock, $dir) };
        POSIX::_exit(0);
    }
    close $sock;
    $self->{pid} = $pid;
    return $self;
}

sub port { $_[0]{port} }

sub set {
    my ($self, $name, @addrs) = @_;
    my $t = $self->_read_table;
    $t->{lc $name} = defined $addrs[0] ? [@addrs] : undef;
    $self->_write_table($t);
}

sub queries {
    my ($self, $name) = @_;
    open my $fh, '<', "$self->{dir}/queries" or return 0;
    return scalar grep { chomp; $_ eq lc $name } <$fh>;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid} && $$ == $self->{owner};
    kill 'KILL', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

sub DESTROY { local ($?, $!, $@); $_[0]->stop }

# the table: one line per name, "name addr addr..." or "name -" (NXDOMAIN)
sub _write_table {
    my ($self, $t) = @_;
    my $f = "$self->{dir}/table";
    open my $fh, '>', "$f.tmp" or croak "$f: $!";
    print $fh join(' ', $_, @{ $t->{$_} // ['-'] }), "\n" for sort keys %$t;
    close $fh;
    rename "$f.tmp", $f or croak "$f: $!";
}

sub _read_table {
    my ($self) = @_;
    my $dir = ref $self ? $self->{dir} : $self;
    my %t;
    open my $fh, '<', "$dir/table" or return \%t;
    while (<$fh>) {
        my ($name, @a) = split;
        $t{$name} = $a[0] eq '-' ? undef : \@a;
    }
    return \%t;
}

sub _serve {
    my ($sock, $dir) = @_;
    open my $log, '>>', "$dir/queries" or die;
    $log->autoflush(1);
    while (1) {
        my $peer = $sock->recv(my $q, 512) // next;
        next if length $q < 17;
        my ($id, $flags, $qd) = unpack 'n n n', $q;
        my ($pos, @labels) = (12);
        while ($pos < length $q) {
            my $len = ord substr($q, $pos, 1);
            $pos++;
            last if $len == 0;
            push @labels, substr($q, $pos, $len);
            $pos += $len;
        }
        my ($type) = unpack 'n', substr($q, $pos, 2);
        my $question = substr($q, 12, $pos + 4 - 12);
        my $name = lc join '.', @labels;
        print $log "$name\n" if $type == 1;
        my $t = _read_table($dir);
        my ($rcode, @answers) = (0);
        if (!exists $t->{$name} || !defined $t->{$name}) {
            $rcode = 3;
        } elsif ($type == 1) {
            @answers = map { pack('n n n N n', 0xc00c, 1, 1, 1, 4) . pack('C4', split /\./) } @{ $t->{$name} };
        }
        my $head = pack 'n n n n n n', $id, 0x8180 | ($flags & 0x0100) | $rcode, 1, scalar @answers, 0, 0;
        $sock->send($head . $question . join('', @answers), 0, $peer);
    }
}

1;
