#!/usr/bin/perl
# util/script-source.pl DIR NAME: print redis/NAME.lua of the checkout DIR as
# the module loads it into Redis: its "#!lua" line first (if it has one),
# then the shared parts ngx_http_supportdesk_script.c gives it (lib.lua,
# lib_customer.lua, lib_scan.lua, in that order, or none), then the rest of
# the script.  Without the "sd.count_events = true" line of
# supportdesk_metrics.  For the tools that load the scripts themselves
# (bench/run, bench/redis-instr.sh), so that they read the module's own
# table instead of a copy of it.  Also reads the table as it was before
# lib_customer.lua (0: lib.lua, 1: lib.lua and lib_scan.lua).
use strict;
use warnings;

@ARGV == 2 or die "usage: $0 DIR NAME\n";
my ($dir, $name) = @ARGV;

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or die "$0: $f: $!\n";
    local $/;
    return scalar <$fh>;
}

my $table = slurp("$dir/ngx_http_supportdesk_module/"
                  . "ngx_http_supportdesk_script.c");
my ($flags) = $table =~ /\{\s*ngx_string\("\Q$name\E"\),\s*([^}]+?)\s*\}/
    or die "$0: no script \"$name\" in the script table of $dir\n";

my %parts;
if ($flags =~ /^\d+$/) {
    %parts = (lib => 1, ($flags ? (lib_scan => 1) : ()));
} else {
    my %of = (NOTHING => [], LIB => ['lib'],
              CUSTOMER => ['lib', 'lib_customer'], SCAN => ['lib', 'lib_scan']);
    for my $flag ($flags =~ /NGX_HTTP_SUPPORTDESK_WITH_(\w+)/g) {
        my $list = $of{$flag} or die "$0: $name: unknown flag $flag\n";
        $parts{$_} = 1 for @$list;
    }
}

my $script = slurp("$dir/redis/$name.lua");
my $shebang = $script =~ s/\A(#![^\n]*\n)// ? $1 : '';

print $shebang;
for my $part (qw(lib lib_customer lib_scan)) {
    print slurp("$dir/redis/$part.lua") if $parts{$part};
}
print $script;
