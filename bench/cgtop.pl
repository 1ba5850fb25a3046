#!/usr/bin/perl
# cgtop.pl FILE [N [REQUESTS]]: the N (20) functions with the highest self
# cost (Ir) in a callgrind out file, as a percentage of the file's total, and
# per request when REQUESTS is given.  (callgrind_annotate
# 3.19 attributes the whole cost of a dump taken with callgrind_control to
# main's callers; this reads the cost lines directly.)
use strict;
use warnings;

my ($file, $top, $requests) = @ARGV;
$top ||= 20;
$requests ||= 0;
open my $fh, '<', $file or die "$file: $!\n";
my (%name, %obname, %self, %objof, $fn, $ob, $after_calls, $total);
while (<$fh>) {
    chomp;
    if (/^(c?)(fn|ob)=\((\d+)\)(?: (.*))?$/) {
        my ($called, $kind, $id, $n) = ($1, $2, $3, $4);
        if ($kind eq 'fn') {
            $name{$id} = $n if defined $n;
            $fn = $id unless $called;
        } else {
            $obname{$id} = $n if defined $n;
            $ob = $id unless $called;
        }
        next;
    }
    if (/^calls=/) { $after_calls = 1; next; }
    if (/^[+-]?(?:\d+|\*)\s+(\d+)/) {
        # the line after calls= is the inclusive cost of that call
        if ($after_calls) { $after_calls = 0; next; }
        $self{$fn} += $1;
        $objof{$fn} = $ob;
        $total += $1;
    }
}
die "$file: no cost lines\n" unless $total;
my $per = sub { $requests ? sprintf("%10.0f", $_[0] / $requests) : '' };
printf "%14s %6s %10s  %s\n", 'Ir (self)', '%', $requests ? 'per req' : '',
       'function [object]';
my $n = 0;
for my $f (sort { $self{$b} <=> $self{$a} } keys %self) {
    my $o = defined $objof{$f} && defined $obname{$objof{$f}} ? $obname{$objof{$f}} : '?';
    $o =~ s{.*/}{};
    printf "%14d %5.1f%% %10s  %s [%s]\n", $self{$f}, 100 * $self{$f} / $total,
           $per->($self{$f}), $name{$f} // "fn$f", $o;
    last if ++$n >= $top;
}
printf "%14d %5.1f%% %10s  total\n", $total, 100, $per->($total);
