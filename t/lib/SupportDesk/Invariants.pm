package SupportDesk::Invariants;

# Consistency checks of one app's data in Redis, reusable outside Test::More
# (chaos tools, soak tests):
#
#   my @problems = SupportDesk::Invariants::check($redis, $app);
#
# $redis is a Redis.pm client (or anything with the same methods) already
# connected to the right server and database. Returns a list of strings,
# empty when everything is consistent.
#
# Layout (see the team brief):
#   sd:{app}:c:<extId>  HASH  s e n p a m c u
#   sd:{app}:emails     HASH  lowercase(email) -> extId
#   sd:{app}:order      ZSET  member extId, score s
#   sd:{app}:seq        STRING counter behind s

use strict;
use warnings;

sub _lc_ascii { my $s = shift; $s =~ tr/A-Z/a-z/; return $s }

sub scan_keys {
    my ($redis, $pattern) = @_;
    my %seen;
    my $cursor = 0;
    do {
        my ($next, $keys) = $redis->scan($cursor, 'MATCH', $pattern, 'COUNT', 1000);
        $seen{$_} = 1 for @$keys;
        $cursor = $next;
    } while ($cursor ne '0');
    return sort keys %seen;
}

sub check {
    my ($redis, $app) = @_;
    my @p;
    my $pfx = "sd:{$app}:";

    my %emails = $redis->hgetall("${pfx}emails");
    my %order  = $redis->zrange("${pfx}order", 0, -1, 'WITHSCORES');
    my @ckeys  = scan_keys($redis, "${pfx}c:*");

    my %cust;    # extId -> hash
    for my $k (@ckeys) {
        my $type = $redis->type($k);
        my $ext = substr($k, length("${pfx}c:"));
        if ($type ne 'hash') {
            push @p, "$k is a $type, not a hash";
            next;
        }
        $cust{$ext} = { $redis->hgetall($k) };
    }

    # email index -> customer
    for my $lc (sort keys %emails) {
        my $ext = $emails{$lc};
        my $h = $cust{$ext};
        if (!$h) {
            push @p, "emails entry '$lc' -> '$ext' points at a missing customer";
            next;
        }
        if (!defined $h->{e}) {
            push @p, "customer '$ext' has no e field (index entry '$lc')";
        } elsif (_lc_ascii($h->{e}) ne $lc) {
            push @p, "emails entry '$lc' -> '$ext' but the customer's email is '$h->{e}'";
        }
        if ($lc ne _lc_ascii($lc)) {
            push @p, "emails field '$lc' is not lowercase";
        }
    }

    # customer -> exactly one index entry, one order entry
    my %by_ext;
    push @{ $by_ext{ $emails{$_} } }, $_ for keys %emails;
    my %s_seen;
    my $max_s = 0;
    for my $ext (sort keys %cust) {
        my $h = $cust{$ext};
        my $n = scalar @{ $by_ext{$ext} || [] };
        push @p, "customer '$ext' has $n email index entries (want 1)" if $n != 1;
        for my $f (qw(s e n c u)) {
            push @p, "customer '$ext' lacks field '$f'" unless defined $h->{$f};
        }
        if (defined $h->{s}) {
            if ($h->{s} !~ /^[0-9]+$/) {
                push @p, "customer '$ext' has a non-integer s '$h->{s}'";
            } else {
                $max_s = $h->{s} if $h->{s} > $max_s;
                push @p, "customers '$s_seen{$h->{s}}' and '$ext' share s=$h->{s}"
                    if exists $s_seen{$h->{s}};
                $s_seen{$h->{s}} = $ext;
            }
        }
        if (!exists $order{$ext}) {
            push @p, "customer '$ext' is not in ${pfx}order";
        } elsif (defined $h->{s} && $order{$ext} != $h->{s}) {
            push @p, "customer '$ext' has s=$h->{s} but order score $order{$ext}";
        }
        for my $f (qw(c u)) {
            push @p, "customer '$ext' field $f='$h->{$f}' is not unix seconds"
                if defined $h->{$f} && $h->{$f} !~ /^[0-9]+$/;
        }
        my %known = map { $_ => 1 } qw(s e n p a m c u);
        for my $f (sort keys %$h) {
            push @p, "customer '$ext' has an unknown field '$f'" unless $known{$f};
        }
    }

    # order -> customer
    for my $ext (sort keys %order) {
        push @p, "order member '$ext' has no customer hash" unless $cust{$ext};
    }

    # seq counter behind s
    if (%cust) {
        my $seq = $redis->get("${pfx}seq");
        if (!defined $seq) {
            push @p, "${pfx}seq is missing while customers exist";
        } elsif ($seq !~ /^[0-9]+$/ || $seq < $max_s) {
            push @p, "${pfx}seq=$seq is below the largest s=$max_s";
        }
    }

    return @p;
}

1;
