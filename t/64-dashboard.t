# The Grafana dashboard (dashboards/supportdesk.json) against the metric
# names of dashboards/metrics.txt: every expression of every panel (and of
# the template variables) uses only those names and PromQL functions this
# file knows; the list holds only the names SPEC 13 fixes (plus _bucket,
# _sum and _count of its histograms) and the dashboard uses each of them;
# panels have unique ids, the dashboard's datasource variable, and do not
# overlap on the grid. No server: the metrics endpoint is not part of this.
# Configuration: none (no environment).
use strict;
use warnings;
use Test::More;
use JSON::PP;
use SupportDesk::Test qw(repo_root single_pass_only);

single_pass_only('no nginx, no Redis (dashboards/ against SPEC 13)');

my $root = repo_root();
my $file = "$root/dashboards/supportdesk.json";
my $list = "$root/dashboards/metrics.txt";

sub slurp { my ($f) = @_; open my $fh, '<', $f or return; local $/; return scalar <$fh> }

my $text = slurp($file);
ok(defined $text, 'dashboards/supportdesk.json exists') or BAIL_OUT('no dashboard');
my $d = eval { JSON::PP->new->decode($text) };
ok($d, 'the dashboard is JSON') or BAIL_OUT("not JSON: $@");

my %allowed = map { $_ => 1 } grep { /\S/ && !/^\s*#/ } map { s/\s+\z//r } split /\n/, slurp($list) // '';
ok(%allowed, 'dashboards/metrics.txt lists names');

# ---------------------------------------------------------------- the list vs SPEC 13
my $spec = slurp("$root/../shared/SPEC.md");
my %spec_base;    # the base names SPEC 13 gives
SKIP: {
    skip '../shared/SPEC.md is not beside the checkout', 2 unless defined $spec;
    my ($s13) = $spec =~ /^## 13\.(.*?)(?=^## |\z)/ms;
    ok($s13, 'SPEC.md has section 13');
    my (%base, %hist);
    for my $line (split /\n/, $s13 // '') {
        while ($line =~ /`(supportdesk_[a-z_]+)(?:\{[^}]*\})?`( \(histogram)?/g) {
            $base{$1} = 1;
            $hist{$1} = 1 if $2;
        }
    }
    my %spec_names = %base;
    for my $h (keys %hist) { $spec_names{"${h}_$_"} = 1 for qw(bucket sum count) }
    my @extra = grep { !$spec_names{$_} } sort keys %allowed;
    is_deeply(\@extra, [], 'dashboards/metrics.txt holds only names SPEC 13 fixes (and histogram series)')
        or diag("SPEC 13 names: @{[ sort keys %spec_names ]}");
    %spec_base = %base;
}

# ---------------------------------------------------------------- PromQL
my %FUNCTIONS = map { $_ => 1 } qw(sum avg min max count rate irate increase
    histogram_quantile clamp_min clamp_max abs label_values topk bottomk);
my %KEYWORDS = map { $_ => 1 } qw(by without on ignoring group_left group_right
    bool offset and or unless);

# (metric names, problems) of one expression
sub promql_names {
    my ($expr) = @_;
    my (@names, @problems);
    my $e = $expr;
    $e =~ s/"(?:[^"\\]|\\.)*"//g;
    $e =~ s/'(?:[^'\\]|\\.)*'//g;
    $e =~ s/\{[^{}]*\}//g;                                  # label matchers
    $e =~ s/\[[^\[\]]*\]//g;                                # ranges
    $e =~ s/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)//g;
    $e =~ s/\blabel_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^()]*\)/$1/g;
    push @problems, "left over: $1" if $e =~ /([{}\[\]"'\$])/;
    while ($e =~ /(?<![0-9.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g) {
        my ($id, $call) = ($1, $2);
        if ($call) { push @problems, "unknown function $id" unless $FUNCTIONS{$id}; next }
        next if $KEYWORDS{$id};
        push @names, $id;
    }
    return (\@names, \@problems);
}

# the checker itself must be able to fail
{
    my ($n, $p) = promql_names('sum by (route) (rate(supportdesk_nope_total{route=~"$route"}[$__rate_interval]))');
    is_deeply($n, ['supportdesk_nope_total'], 'promql_names: finds the metric, not labels, functions or ranges');
    ($n, $p) = promql_names('histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) / sumx(y)');
    is_deeply([$n, $p], [['x_bucket', 'y'], ['unknown function sumx']], 'promql_names: an unknown function is a problem');
}

# ---------------------------------------------------------------- the dashboard
my @panels;
sub walk_panels { for my $p (@_) { push @panels, $p; walk_panels(@{ $p->{panels} || [] }) } }
walk_panels(@{ $d->{panels} || [] });
ok(@panels > 10, sprintf 'the dashboard has panels (%d)', scalar @panels);
ok($d->{uid} && $d->{title}, "uid $d->{uid}, title '$d->{title}'");

my %ids;
my %used;
my @exprs;
for my $p (@panels) {
    ok(!$ids{ $p->{id} }++, "panel id $p->{id} is unique");
    next if ($p->{type} // '') eq 'row';
    my @t = @{ $p->{targets} || [] };
    ok(@t, "panel '$p->{title}' has queries");
    is(($p->{datasource} || {})->{uid}, '${datasource}', "panel '$p->{title}' uses the datasource variable");
    push @exprs, map { [ "panel '$p->{title}' $_->{refId}", $_->{expr} ] } @t;
}
for my $v (@{ ($d->{templating} || {})->{list} || [] }) {
    next unless ($v->{type} // '') eq 'query';
    my $q = ref $v->{query} ? $v->{query}{query} : $v->{query};
    push @exprs, [ "variable \$$v->{name}", $q ];
}
for my $x (@exprs) {
    my ($where, $expr) = @$x;
    my ($names, $problems) = promql_names($expr // '');
    ok(@$names, "$where: names a metric");
    my @bad = grep { !$allowed{$_} } @$names;
    is_deeply([@bad, @$problems], [], "$where: only metrics of dashboards/metrics.txt")
        or diag("expression: $expr");
    $used{$_}++ for @$names;
}

# every SPEC 13 metric is on the dashboard (a histogram through any series)
SKIP: {
    skip 'no SPEC.md', 1 unless %spec_base;
    my @missing = grep {
        my $b = $_;
        !$used{$b} && !grep { $used{"${b}_$_"} } qw(bucket sum count)
    } sort keys %spec_base;
    is_deeply(\@missing, [], 'every metric SPEC 13 names is on the dashboard');
}

# the grid: inside 24 columns, no two panels on the same cell
my %cell;
my @overlap;
for my $p (@{ $d->{panels} }) {
    my $g = $p->{gridPos};
    ok($g && $g->{x} + $g->{w} <= 24, "panel '$p->{title}' fits the 24 columns");
    for my $x ($g->{x} .. $g->{x} + $g->{w} - 1) {
        for my $y ($g->{y} .. $g->{y} + $g->{h} - 1) {
            push @overlap, "'$p->{title}' and '$cell{$x,$y}' at $x,$y" if $cell{$x,$y};
            $cell{$x,$y} = $p->{title};
        }
    }
}
is_deeply([ @overlap[0 .. ($#overlap < 4 ? $#overlap : 4)] ], [], 'no two panels overlap');

done_testing;
