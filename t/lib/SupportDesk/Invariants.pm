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
#   sd:{app}:c:<extId>  HASH  s e n p a m c u v (v: the version, ETag; u:
#                             absent until the first update)
#   sd:{app}:emails:<b> HASH  lowercase(email) -> extId, bucket b by linear
#                             hashing (redis/lib_customer.lua)
#   sd:{app}:emails:n   STRING the number of buckets, negative while
#   sd:{app}:emails     HASH  (the index before buckets) still has entries
#   sd:{app}:order:<b>  HASH  s -> extId, b = floor(s / 128) (listpack buckets)
#   sd:{app}:order:n    STRING the app's customer count
#   sd:{app}:seq        STRING counter behind s
#   sd:{app}:notes:<extId>  HASH  noteNumber -> "<createdAt unix>:<text>"
#   sd:{app}:notez:<extId>  ZSET  noteNumber scored by noteNumber
#   sd:{app}:noteseq        STRING counter behind the note numbers
#   sd:{app}:notif:<extId>  HASH  the three settings, "0"|"1"
#   sd:{app}:events     STREAM the change feed, ids <ms>-<n>, n = 1, 2, ...
#   sd:{app}:eventseq   HASH  n (events ever added), ms (the newest's time)

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

# The creation order, from its buckets: extId -> s. Problems with the
# buckets themselves (a field in the wrong bucket, an extId twice) are pushed
# to @$problems when given.
sub order_entries {
    my ($redis, $app, $problems) = @_;
    my $pfx = "sd:{$app}:";
    my %order;
    for my $k (scan_keys($redis, "${pfx}order:*")) {
        my ($b) = $k =~ /:order:([0-9]+)\z/ or next;
        my %f = $redis->hgetall($k);
        for my $s (keys %f) {
            my $ext = $f{$s};
            push @$problems, "order entry s=$s is in bucket $b, not " . int($s / 128)
                if $problems && int($s / 128) != $b;
            push @$problems, "'$ext' is in the order twice (s=$order{$ext} and s=$s)"
                if $problems && exists $order{$ext};
            $order{$ext} = $s;
        }
    }
    return %order;
}

# The email index's bucket for a lowercase email, as redis/lib_customer.lua
# computes it, with $nb buckets
sub email_bucket {
    my ($nb, $lower) = @_;
    require Digest::SHA;
    my $h = hex(substr(Digest::SHA::sha1_hex($lower), 0, 8));
    my $p = 1;
    $p *= 2 while $p * 2 <= $nb;
    my $b = $h % $p;
    $b = $h % ($p * 2) if $b < $nb - $p;
    return $b;
}

# The email index, from its buckets and the hash before them: lowercase
# email -> extId.  Problems of the index itself (an entry in the wrong
# bucket or in two places, a bucket past the count, a bucket that is no
# listpack) are pushed to @$problems when given.
sub email_entries {
    my ($redis, $app, $problems) = @_;
    my $pfx = "sd:{$app}:emails";
    my $n = $redis->get("$pfx:n");
    my $nb = defined $n ? abs($n) : 1;
    my %e;
    for my $k (scan_keys($redis, "$pfx:*")) {
        my ($b) = $k =~ /:emails:([0-9]+)\z/ or next;
        my %f = $redis->hgetall($k);
        if ($problems) {
            push @$problems, "email bucket $b is past the $nb buckets" if $b >= $nb;
            my $enc = $redis->object_encoding($k) // '';
            # a bucket stays a listpack unless an entry is over Redis's
            # limits (hash-max-listpack-*: 128 entries, 64 bytes by default)
            my $longest = 0;
            for (%f) { $longest = length if length > $longest }
            push @$problems, "email bucket $b is a $enc, not a listpack"
                if $enc ne 'listpack' && keys %f <= 128 && $longest <= 64;
        }
        for my $lc (keys %f) {
            my $want = email_bucket($nb, $lc);
            push @$problems, "emails entry '$lc' is in bucket $b, not $want"
                if $problems && $want != $b;
            push @$problems, "emails entry '$lc' is in two buckets"
                if $problems && exists $e{$lc};
            $e{$lc} = $f{$lc};
        }
    }
    my %old = $redis->hgetall($pfx);
    for my $lc (keys %old) {
        push @$problems, "emails entry '$lc' is in a bucket and in $pfx"
            if $problems && exists $e{$lc};
        $e{$lc} = $old{$lc};
    }
    push @$problems, "$pfx has entries but $pfx:n says it has none"
        if $problems && %old && defined $n && $n > 0;
    return %e;
}

# extIds in creation order
sub order_list {
    my ($redis, $app) = @_;
    my %o = order_entries($redis, $app);
    return sort { $o{$a} <=> $o{$b} } keys %o;
}

sub check {
    my ($redis, $app) = @_;
    my @p;
    my $pfx = "sd:{$app}:";

    my @op;
    my %emails = email_entries($redis, $app, \@op);
    my %order = order_entries($redis, $app, \@op);
    push @p, @op;
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
        # u: absent until the first update (updatedAt is then c)
        for my $f (qw(s e n c)) {
            push @p, "customer '$ext' lacks field '$f'" unless defined $h->{$f};
        }
        # every update writes u and v together; a customer written before
        # versions has u
        push @p, "customer '$ext' has no u but version v='" . ($h->{v} // '') . "' (want 1: never updated)"
            if !defined $h->{u} && ($h->{v} // '') ne '1';
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
        push @p, "customer '$ext' has a version v='$h->{v}', not a positive integer"
            if defined $h->{v} && $h->{v} !~ /^[1-9][0-9]*$/;
        my %known = map { $_ => 1 } qw(s e n p a m c u v);
        for my $f (sort keys %$h) {
            push @p, "customer '$ext' has an unknown field '$f'" unless $known{$f};
        }
    }

    # order -> customer
    for my $ext (sort keys %order) {
        push @p, "order member '$ext' has no customer hash" unless $cust{$ext};
    }

    # the change feed: its ids count every event, none skipped, none ahead
    # of its counter
    my $seq_n = $redis->hget("${pfx}eventseq", 'n');
    my $last;
    if ($redis->exists("${pfx}events")) {
        my $start = '-';
        while (1) {
            my $page = $redis->xrange("${pfx}events", $start, '+', 'COUNT', 1000);
            last unless @$page;
            for my $e (@$page) {
                my ($ms, $n) = $e->[0] =~ /^(\d+)-(\d+)$/;
                if (!defined $n) {
                    push @p, "event id '$e->[0]' is not <ms>-<n>";
                    next;
                }
                push @p, "event $e->[0] follows event number $last: an event is missing"
                    if defined $last && $n != $last + 1;
                $last = $n;
            }
            $start = '(' . $page->[-1][0];
        }
        push @p, "the feed's last event is number $last but ${pfx}eventseq says " . ($seq_n // 'nothing')
            if defined $last && (!defined $seq_n || $seq_n < $last);
    }

    my $count = $redis->get("${pfx}order:n") // 0;
    push @p, "${pfx}order:n=$count but the app has " . scalar(keys %cust) . " customers"
        if $count != keys %cust;

    # seq counter behind s
    if (%cust) {
        my $seq = $redis->get("${pfx}seq");
        if (!defined $seq) {
            push @p, "${pfx}seq is missing while customers exist";
        } elsif ($seq !~ /^[0-9]+$/ || $seq < $max_s) {
            push @p, "${pfx}seq=$seq is below the largest s=$max_s";
        }
    }

    push @p, check_notes($redis, $app, \%cust);

    return @p;
}

# notes and notification settings: every notez member has a notes field and
# vice versa, no notes/notez/notif key without its customer, note numbers
# unique within the app and not above noteseq. $cust (extId -> hash) is
# looked up when not given.
sub check_notes {
    my ($redis, $app, $cust) = @_;
    my @p;
    my $pfx = "sd:{$app}:";
    my $has_customer = sub {
        my $ext = shift;
        return exists $cust->{$ext} if $cust;
        return $redis->exists("${pfx}c:$ext");
    };

    my (%notes, %notez);
    for my $kind (qw(notes notez notif)) {
        for my $k (scan_keys($redis, "${pfx}$kind:*")) {
            my $ext = substr($k, length("${pfx}$kind:"));
            my $type = $redis->type($k);
            my $want = $kind eq 'notez' ? 'zset' : 'hash';
            if ($type ne $want) {
                push @p, "$k is a $type, not a $want";
                next;
            }
            push @p, "$k exists but customer '$ext' does not" unless $has_customer->($ext);
            if ($kind eq 'notes') {
                $notes{$ext} = { $redis->hgetall($k) };
            } elsif ($kind eq 'notez') {
                $notez{$ext} = { $redis->zrange($k, 0, -1, 'WITHSCORES') };
            } else {
                # field names are checked by t/54-notifications.t; here:
                # at most the three settings, each "0" or "1"
                my %h = $redis->hgetall($k);
                push @p, "$k has " . scalar(keys %h) . " fields (at most 3)" if keys %h > 3;
                for my $f (sort keys %h) {
                    push @p, "$k field $f='$h{$f}' is not 0 or 1"
                        unless $h{$f} =~ /^[01]\z/;
                }
            }
        }
    }

    my (%note_owner, $max_note);
    $max_note = 0;
    for my $ext (sort(keys %{ { %notes, %notez } })) {
        my $h = $notes{$ext} || {};
        my $z = $notez{$ext} || {};
        for my $n (sort keys %$h) {
            push @p, "note $n of '$ext' is in notes but not in notez" unless exists $z->{$n};
            push @p, "note $n of '$ext' value is not '<unix seconds>:<text>'"
                unless $h->{$n} =~ /^[0-9]+:/;
        }
        for my $n (sort keys %$z) {
            push @p, "note $n of '$ext' is in notez but not in notes" unless exists $h->{$n};
            push @p, "notez member $n of '$ext' has score $z->{$n}"
                unless $z->{$n} =~ /^[0-9]+$/ && $z->{$n} == $n;
        }
        for my $n (keys %{ { %$h, %$z } }) {
            if ($n !~ /^[0-9]+$/) {
                push @p, "note number '$n' of '$ext' is not an integer";
                next;
            }
            push @p, "note number $n used by both '$note_owner{$n}' and '$ext'"
                if exists $note_owner{$n} && $note_owner{$n} ne $ext;
            $note_owner{$n} = $ext;
            $max_note = $n if $n > $max_note;
        }
    }
    if (%note_owner) {
        my $seq = $redis->get("${pfx}noteseq");
        if (!defined $seq) {
            push @p, "${pfx}noteseq is missing while notes exist";
        } elsif ($seq !~ /^[0-9]+$/ || $seq < $max_note) {
            push @p, "${pfx}noteseq=" . $seq . " is below the largest note number $max_note";
        }
    }
    return @p;
}

1;
