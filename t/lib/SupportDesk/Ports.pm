package SupportDesk::Ports;

# Free loopback ports for the servers the tests start (nginx, redis-server,
# cluster nodes and their buses, sentinels).
#
# A port is chosen below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768-60999 by default), never in it: a
# port the kernel hands to `bind(0)` is one it also hands to outgoing
# connections, so between the check and the server's own bind a connection
# of another test (nginx to Redis, a client to nginx) could take it, and the
# server fails with EADDRINUSE (a fresh-clone CI lost a run to this in
# util/test-deb.sh).  Each port is checked by binding it, and every socket
# is held until all the ports asked for are chosen, so one call never hands
# out a port twice.  8080 and 6390 are `make run`'s and never chosen.

use strict;
use warnings;

use Carp qw(croak);
use IO::Socket::INET;

my %RESERVED = (8080 => 1, 6390 => 1);

# [first, last] of the ports to choose from: below the ephemeral range when
# there are enough there, else above it, else (an odd host) none: bind(0)
sub _range {
    my ($lo, $hi) = (32768, 60999);
    if (open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range') {
        my $line = <$fh>;
        ($lo, $hi) = split ' ', $line if defined $line && $line =~ /^\s*\d+\s+\d+/;
        close $fh;
    }
    return (10000, $lo - 1) if $lo - 10000 >= 4000;
    return ($hi + 1, 65535) if 65535 - $hi >= 4000;
    return;
}

sub free_ports {
    my ($n) = @_;
    my ($first, $last) = _range();
    my (@socks, %seen);
    my $tries = 0;
    while (@socks < $n) {
        croak "no free port found" if ++$tries > 200 * $n;
        my $want = defined $first ? $first + int(rand($last - $first + 1)) : 0;
        next if $want && ($seen{$want} || $RESERVED{$want});
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $want,
            Proto => 'tcp', Listen => 1, ReuseAddr => 1);
        if (!$s) {
            croak "cannot bind a free port: $!" unless $want;
            next;    # taken: another one
        }
        my $p = $s->sockport;
        next if $seen{$p}++ || $RESERVED{$p};
        push @socks, $s;
    }
    my @p = map { $_->sockport } @socks;
    close $_ for @socks;
    return @p;
}

sub free_port { return (free_ports(1))[0] }

1;
