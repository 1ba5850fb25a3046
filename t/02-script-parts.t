# What goes in front of each Redis script (ngx_http_supportdesk_script.c:
# lib.lua, lib_customer.lua, lib_scan.lua, or nothing) covers what the
# script uses: a script that calls an sd.* helper its parts do not define
# fails in Redis on that path only ("attempt to call a nil value"), which a
# rare path could hide from the other tests.  And lib.lua's table is
# presized for every name lib.lua and lib_customer.lua define (a name left
# out costs every call a rehash: redis/lib.lua says why).
# Read from the sources; then the tools that load the scripts themselves
# (util/script-source.pl, for bench/) are checked against the scripts the
# module loaded into a real Redis.
use strict;
use warnings;
use Test::More;
use File::Basename qw(dirname);
use Digest::SHA qw(sha1_hex);
use Sys::Hostname qw(hostname);
use SupportDesk::Test qw(single_pass_only envelope_ok);

single_pass_only('the sources, and the scripts the module loads into the one '
                 . 'Redis (a cluster node loads the same)');

my $root = dirname(__FILE__) . '/..';
my $c    = "$root/ngx_http_supportdesk_module/ngx_http_supportdesk_script.c";

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}

# a Lua source without its comments (no script has "--" inside a string)
sub code_of {
    my ($name) = @_;
    (my $s = slurp("$root/redis/$name.lua")) =~ s/--[^\n]*//g;
    return $s;
}

# the sd.* names a part defines at its top level
sub defined_by {
    my ($name) = @_;
    my %def;
    for my $line (split /\n/, code_of($name)) {
        $def{$1} = 1 if $line =~ /^\s*function sd\.(\w+)/;
        if ($line =~ /^((?:sd\.\w+\s*,\s*)*sd\.\w+)\s*=/) {
            $def{$_} = 1 for $1 =~ /sd\.(\w+)/g;
        }
    }
    return \%def;
}

my %part_of = (LIB => ['lib'], CUSTOMER => ['lib', 'lib_customer'],
               SCAN => ['lib', 'lib_scan'], NOTHING => []);

my $table = slurp($c);
my @scripts = $table =~ /\{\s*ngx_string\("(\w+)"\),\s*([^}]+?)\s*\}/g;
my %with;
while (my ($name, $flags) = splice @scripts, 0, 2) {
    next if $name =~ /^lib/;
    my %parts;
    for my $flag ($flags =~ /NGX_HTTP_SUPPORTDESK_WITH_(\w+)/g) {
        ok(exists $part_of{$flag}, "$name: flag $flag is known")
            or next;
        $parts{$_} = 1 for @{ $part_of{$flag} };
    }
    $with{$name} = \%parts;
}

# every script of redis/ is in the table, and only those
my @files = map { m{/(\w+)\.lua$} ? $1 : () } glob "$root/redis/*.lua";
my @own   = sort grep { !/^lib/ } @files;
is_deeply([sort keys %with], \@own,
          'the script table names every script of redis/ but the lib files');

my %defs = map { $_ => defined_by($_) } qw(lib lib_customer lib_scan);
ok(keys %{ $defs{$_} } > 0, "$_.lua defines sd.* names")
    for qw(lib lib_customer lib_scan);

for my $name (@own) {
    my $parts = $with{$name} or next;
    my %have  = map { %{ $defs{$_} } } keys %$parts;
    my %used  = map { $_ => 1 } code_of($name) =~ /\bsd\.(\w+)/g;
    my @missing = grep { !$have{$_} } sort keys %used;
    is("@missing", '', "$name: every sd.* it uses is in front of it ("
                       . (join(' ', sort keys %$parts) || 'nothing') . ')');
    # the parts in front of it use only what is in front of them
    for my $part (grep { $_ ne 'lib' } keys %$parts) {
        my %part_used = map { $_ => 1 } code_of($part) =~ /\bsd\.(\w+)/g;
        my @gap = grep { !$have{$_} && $_ ne 'customer_fields' }
                  sort keys %part_used;
        is("@gap", '', "$name: what $part.lua uses is in front of it");
    }
}

# lib_scan.lua's customer filters read sd.customer_fields: the scripts that
# call them get lib_customer.lua too
for my $name (grep { $with{$_}{lib_scan} } @own) {
    my $filters = code_of($name) =~ /\bsd\.filter_fields\b/;
    ok(!$filters || $with{$name}{lib_customer},
       "$name: uses the customer filters only with lib_customer.lua");
}

# lib.lua's table, presized for every name of lib.lua and lib_customer.lua
my ($ctor) = code_of('lib') =~ /^local sd = \{(.*?)\}/ms;
ok(defined $ctor, 'lib.lua makes sd with a table constructor');
my %sized = map { $_ => 1 } ($ctor // '') =~ /(\w+)\s*=/g;
for my $part (qw(lib lib_customer)) {
    my @unsized = grep { !$sized{$_} } sort keys %{ $defs{$part} };
    is("@unsized", '', "lib.lua's sd is presized for every name of $part.lua");
}

# util/script-source.pl gives each script as the module loads it: a
# connection loads every script when it connects, each ending with its tag
# (ngx_http_supportdesk_redis_own_scripts: "-- supportdesk connection
# <host>/<pool>/<worker>/<connection>"), so after one request the SHA-1 of
# the tool's source and the first connection's tag is in the script cache
my $env = SupportDesk::Test->new(worker_processes => 1);
my $key = $env->create_key('acme', 'script sources');
my $res = $env->api('GET', 'nobody', $key);
is($res->{status}, 404, 'a request went through the module (404 for nobody)');
(my $host = lc hostname()) =~ s/[^\x21-\x7e]/?/g;
my $tag = "\n-- supportdesk connection $host/0/0/0\n";
my $R = $env->redis;
my ($control) = $R->script('exists', sha1_hex("return 1\n$tag"));
is($control, 0, 'a source the module never loaded is not in the cache');
for my $name (@own) {
    my $source = `perl $root/util/script-source.pl $root $name`;
    is($?, 0, "script-source.pl $name runs");
    my ($exists) = $R->script('exists', sha1_hex($source . $tag));
    is($exists, 1, "$name: util/script-source.pl gives the script the module "
                   . "loaded (its SHA-1 with the connection's tag is in Redis)");
}

done_testing();
