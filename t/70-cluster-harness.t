# The cluster harness itself (t/lib/SupportDesk/Cluster.pm), without the
# module: a Redis Cluster of 3 masters and 3 replicas starts; the client's
# CRC16 slots agree with CLUSTER KEYSLOT; keys of several apps land on the
# masters owning their slots; keyless commands are merged over the masters;
# a moved slot (MOVED) and a slot being moved (ASK) are followed; a killed
# master's replica is promoted and the client finds it; the killed node
# rejoins; SupportDesk::Test's cluster mode (SD_CLUSTER=1) without nginx:
# fixtures, snapshot, invariants, sd-check -c, a cluster reused between
# environments; a cluster with a password.
# Configuration: no nginx; its own clusters (it sets SD_CLUSTER itself, so it
# runs in the single-Redis pass of make test and is skipped in the cluster
# pass).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use SupportDesk::Test qw(wait_until repo_root single_pass_only);
use SupportDesk::Cluster;

single_pass_only('it starts its own clusters and sets SD_CLUSTER itself where it needs it');

my $keyslot = \&SupportDesk::Cluster::keyslot;

# ---------------------------------------------------------------- CRC16, no server
is(sprintf('%04x', SupportDesk::Cluster::crc16('123456789')), '31c3', 'CRC16-XMODEM check value');
is($keyslot->('foo'), 12182, "slot of 'foo' (Redis Cluster specification)");
is($keyslot->('{user1000}.following'), $keyslot->('user1000'), 'a hash tag: its content is hashed');
is($keyslot->('foo{}{bar}'), SupportDesk::Cluster::crc16('foo{}{bar}') & 16383, 'an empty tag: the whole key');
is($keyslot->('foo{{bar}}zap'), $keyslot->('{bar'), "'foo{{bar}}zap' hashes '{bar'");
is($keyslot->('foo{bar}{zap}'), $keyslot->('bar'), 'only the first tag counts');
is($keyslot->('sd:{acme}:c:x'), $keyslot->('acme'), 'an app key hashes on its app');

# ---------------------------------------------------------------- start
my $t0 = time;
my $c = SupportDesk::Cluster->new;
my $took = time - $t0;
diag sprintf 'cluster of 3 masters and 3 replicas started in %.1fs (%s)', $took,
    join(', ', map { sprintf '%s %.1fs', $_, $c->timings->{$_} } sort keys %{ $c->timings });
my @masters = $c->masters;
is(scalar @masters, 3, '3 masters');
is(scalar $c->replicas, 3, '3 replicas');
is(scalar($c->replicas_of($_)), 1, "master $_ has one replica") for @masters;
is_deeply([ $c->seeds ], \@masters, 'the seeds are the masters');
my %pids = map { $_ => $c->pid_of($_) } $c->all_nodes;
is(scalar(grep { kill 0, $_ } values %pids), 6, '6 redis-server processes run');

my $r = $c->client;

# the server's CLUSTER KEYSLOT agrees with ours, tags, bytes and all
{
    my @keys = ('foo', 'sd:{acme}:c:user_1', 'sd:apikey:' . ('ab' x 32), '{}', 'a{b', 'a}b{c}',
                "sd:{acme}:c:\xfcser", "sd:{\xc3\xa9t\xc3\xa9}:seq", 'sd:{}:x', "x\0y", '');
    push @keys, map { "sd:{app$_}:emails" } 1 .. 40;
    my $node = $c->node_client($masters[0]);
    my @bad = grep { $node->cluster('keyslot', $_) != $keyslot->($_) } @keys;
    ok(!@bad, 'CLUSTER KEYSLOT agrees with the CRC16 on ' . scalar(@keys) . ' keys') or diag "@bad";
}

# ---------------------------------------------------------------- routing
# apps spread over the masters: one app per master at least
my %app_of_master;
for my $i (1 .. 200) {
    my $m = $c->master_of_key("sd:{app$i}:seq");
    $app_of_master{$m} //= "app$i";
}
is(scalar keys %app_of_master, 3, 'apps found on each of the 3 masters');
my @apps = ((map { $app_of_master{$_} } @masters), 'acme', 'globex');

for my $app (@apps) {
    $r->hset("sd:{$app}:c:u1", 'n', "name of $app", 'e', "u1\@$app.example");
    $r->set("sd:{$app}:seq", 1);
}
my @apikeys = map { 'sd:apikey:' . sprintf('%064x', $_) } 1 .. 6;
$r->hset($_, 'app', 'acme', 'name', 'k') for @apikeys;

my @misplaced;
for my $k ((map { ("sd:{$_}:c:u1", "sd:{$_}:seq") } @apps), @apikeys) {
    my $owner = $c->master_of_slot($keyslot->($k));
    for my $m (@masters) {
        my $has = $c->node_has_key($m, $k) ? 1 : 0;
        push @misplaced, "$k on $m" if $has != ($m eq $owner ? 1 : 0);
    }
}
ok(!@misplaced, 'every key is on the master of its slot, and only there') or diag join "\n", @misplaced;
is($r->hget("sd:{$_}:c:u1", 'n'), "name of $_", "read back through the client: $_") for @apps;
is_deeply({ $r->hgetall('sd:{acme}:c:u1') }, { n => 'name of acme', e => 'u1@acme.example' },
          'hgetall in list context');
is(ref scalar($r->hgetall('sd:{acme}:c:u1')), 'ARRAY', '... an array ref in scalar context');
is($r->type('sd:{acme}:seq'), 'string', 'type');
is($r->HGET('sd:{acme}:c:u1', 'n'), 'name of acme', 'an upper-case method name');

# keyless commands over every master
my @all = sort((map { ("sd:{$_}:c:u1", "sd:{$_}:seq") } @apps), @apikeys);
is_deeply([ SupportDesk::Invariants::scan_keys($r, '*') ], \@all, 'SCAN walks every master');
is_deeply([ SupportDesk::Invariants::scan_keys($r, 'sd:{acme}:*') ], [ 'sd:{acme}:c:u1', 'sd:{acme}:seq' ],
          "SCAN of a tagged pattern (acme's master only)");
is_deeply([ sort $r->keys('sd:apikey:*') ], \@apikeys, 'KEYS merged');
is($r->dbsize, scalar @all, 'DBSIZE summed');
is($r->ping, 'PONG', 'PING');
is($r->exists(map { "sd:{$_}:seq" } @apps), scalar @apps, 'EXISTS over several slots: the sum');
{
    my $per = $r->info_per_master('commandstats');
    my $sum = 0;
    for my $m (@masters) { ($per->{$m}{cmdstat_hset} // '') =~ /calls=(\d+)/ and $sum += $1 }
    like($r->info('commandstats')->{cmdstat_hset}, qr/^calls=$sum,/, "INFO commandstats: the masters' calls added ($sum)");
    is($sum, @apps + @apikeys, '... one HSET per key written');
}
{
    my $lua = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', 'sd:{acme}:seq')";
    is($r->eval($lua, 1, 'sd:{acme}:x', 'y'), '1', 'EVAL runs on its first key\'s slot');
    ok(!eval { $r->eval('return 1', 0); 1 }, 'EVAL without keys is refused');
    like($@, qr/without keys in cluster mode/, '... saying why');
    is($r->del('sd:{acme}:x', "sd:{$apps[0]}:nothing", "sd:{$apps[1]}:seq"), 2, 'DEL over several slots: the sum');
    $r->set("sd:{$apps[1]}:seq", 1);
}

# ---------------------------------------------------------------- reset
{
    ok($c->reset, 'reset: an unharmed cluster can be reused');
    is($r->dbsize, 0, '... it is empty');
    is($r->info('commandstats')->{cmdstat_hset}, undef, '... its command stats reset');
    is_deeply([ $c->masters ], \@masters, '... the same masters');
    for my $app (@apps) {
        $r->hset("sd:{$app}:c:u1", 'n', "name of $app");
        $r->set("sd:{$app}:seq", 1);
    }
}

# ---------------------------------------------------------------- MOVED
{
    my $slot = $keyslot->('sd:{acme}:seq');
    my $from = $c->master_of_slot($slot);
    my ($to) = grep { $_ ne $from } @masters;
    is($r->master_of_key('sd:{acme}:seq'), $from, "the client's map: acme on $from");
    my $n = $c->move_slot($slot, $to);
    is($n, 2, "move_slot moved acme's slot ($slot) with its 2 keys");
    is($c->master_of_slot($slot), $to, "... now on $to");
    my $plain = Redis->new(server => $from, reconnect => 0);
    ok(!eval { $plain->get('sd:{acme}:seq'); 1 } && $@ =~ /MOVED $slot \Q$to\E/,
       'the old master answers MOVED') or diag $@;
    is($r->get('sd:{acme}:seq'), 1, 'the client follows MOVED');
    is($r->master_of_key('sd:{acme}:seq'), $to, "... and its map has the slot's new master");
    ok($c->node_has_key($to, 'sd:{acme}:c:u1'), 'the data is on the new master');
    is($c->reset, 0, 'a cluster whose slots moved is not reused');
}

# ---------------------------------------------------------------- ASK
{
    my $app = 'globex';
    my $slot = $keyslot->("sd:{$app}:seq");
    my $from = $c->master_of_slot($slot);
    my ($to) = grep { $_ ne $from } @masters;
    $r->hset("sd:{$app}:c:u$_", 'n', "u$_") for 2 .. 5;
    $c->begin_migration($slot, $to);
    is($c->migrate_keys($slot, 3), 3, 'a slot half moved: 3 of its keys migrated');
    my $on_to = grep { $c->node_has_key($to, "sd:{$app}:c:u$_") } 1 .. 5;
    ok($on_to >= 1 && $on_to <= 3, "... $on_to of the customers are on $to, the rest on $from");
    is_deeply([ map { scalar $r->hget("sd:{$app}:c:u$_", 'n') } 2 .. 5 ], [qw(u2 u3 u4 u5)],
              'the client reads every key, moved (ASK) or not');
    is($r->master_of_key("sd:{$app}:seq"), $from, '... and its map is unchanged (ASK is no MOVED)');
    $r->hset("sd:{$app}:c:new", 'n', 'new');
    ok($c->node_has_key($to, "sd:{$app}:c:new"), 'a new key of a migrating slot is written on the target (ASK)');
    $c->migrate_keys($slot);
    $c->end_migration($slot);
    is($c->master_of_slot($slot), $to, "the move finished: $app on $to");
    is($r->hget("sd:{$app}:c:new", 'n'), 'new', 'read after the move');
}

# ---------------------------------------------------------------- a master killed
{
    my $app = $app_of_master{ $masters[2] };
    my $victim = $c->master_of_key("sd:{$app}:seq");
    my ($replica) = $c->replicas_of($victim);
    $r->set("sd:{$app}:seq", 42);
    is($c->node_client($victim)->wait(1, 2000), 1, "the write reached the replica of $victim");
    my $tk = time;
    my $new = $c->kill_master($victim);
    my $promoted = time - $tk;
    diag sprintf 'master %s SIGKILLed: replica %s promoted and the cluster stable in %.1fs', $victim, $new, $promoted;
    is($new, $replica, "its replica $replica is promoted");
    ok(!kill(0, $pids{$victim}), 'the killed process is gone');
    is($c->master_of_key("sd:{$app}:seq"), $new, "the slot of $app is on the promoted replica");
    is($r->get("sd:{$app}:seq"), 42, 'the client finds the new master, with the data');
    ok(!grep({ $_ eq $victim } $c->masters), 'the killed node is no master');
    $c->start_node($victim);
    ok($c->wait_stable(replicas_synced => 1, timeout => 30)
       && wait_until(sub { grep { $_ eq $victim } eval { $c->replicas_of($new) } }, 20),
       'the killed node restarted rejoins as a replica of the promoted one') or diag $c->describe;
}

# ---------------------------------------------------------------- pause
{
    my $m = ($c->masters)[0];
    $c->pause_node($m);
    my $p = Redis->new(server => $m, reconnect => 0, read_timeout => 0.3);
    ok(!eval { $p->get('x'); 1 } && $@ =~ /Error while reading/, "a paused node ($m) does not answer")
        or diag $@;
    $c->resume_node($m);
    ok(wait_until(sub { eval { Redis->new(server => $m, reconnect => 0)->ping } }, 5), '... and answers once resumed');
}

# ---------------------------------------------------------------- stop
{
    my @p = map { $c->pid_of($_) } $c->all_nodes;
    $c->stop;
    ok(!grep({ kill 0, $_ } @p), 'stop: every node is gone');
}

# ---------------------------------------------------------------- SupportDesk::Test, SD_CLUSTER=1, no nginx
{
    local $ENV{SD_CLUSTER} = 1;
    my $CHECK = repo_root() . '/redis/sd-check';
    my $env = SupportDesk::Test->new(start_nginx => 0);
    my $cl = $env->cluster;
    ok($cl, 'SD_CLUSTER: the environment has a cluster');
    like($env->nginx_conf, qr/^\s*supportdesk_redis_cluster \Q@{[ join ' ', $cl->seeds ]}\E;$/m,
         'its nginx.conf names every master in supportdesk_redis_cluster');
    unlike($env->nginx_conf, qr/supportdesk_redis\s+127/, '... and no supportdesk_redis');
    ok(!eval { $env->redis_port; 1 } && $@ =~ /single Redis only/, 'redis_port croaks');
    ok(!eval { $env->stop_redis; 1 } && $@ =~ /single Redis only/, 'stop_redis croaks');
    my $key = $env->create_key('acme');
    $env->seed_customers($_, [ map { { externalId => "x$_", email => "x$_\@example.com", name => "X $_" } } 1 .. 300 ])
        for 'acme', 'globex';
    is($env->customer_count($_), 300, "seed_customers: 300 customers in $_") for 'acme', 'globex';
    my ($by, $order) = $env->customers_of('acme');
    is(scalar @$order, 300, 'customers_of');
    $env->invariants_ok($_) for 'acme', 'globex';
    my $snap = $env->snapshot;
    is(scalar(grep { /^sd:\{acme\}:c:/ } keys %$snap), 300, 'snapshot: every customer of acme');
    ok((grep { /^sd:apikey:/ } keys %$snap), 'snapshot: the API key');
    my $out = `'$CHECK' @{[ $env->sd_check_args ]} --all 2>&1`;
    is($? >> 8, 0, 'sd-check -c --all: consistent') or diag $out;
    like($out, qr/app acme: 300 customers.*app globex: 300 customers/s, '... both apps') or diag $out;
    $env->redis->hdel($env->email_bucket_key('globex', 'x7@example.com'), 'x7@example.com');
    $out = `'$CHECK' @{[ $env->sd_check_args ]} globex 2>&1`;
    is($? >> 8, 1, 'sd-check -c finds a broken invariant') or diag $out;
    ok(!$env->check_invariants('acme') && $env->check_invariants('globex'), 'so do the invariants');
    my @seeds = $cl->seeds;
    undef $env;
    my $env2 = SupportDesk::Test->new(start_nginx => 0);
    is_deeply([ $env2->cluster->seeds ], \@seeds, 'the next environment reuses the cluster');
    is_deeply($env2->snapshot, {}, '... emptied');
    my $env3 = SupportDesk::Test->new(start_nginx => 0);
    isnt(($env3->cluster->seeds)[0], $seeds[0], 'an environment alive at the same time gets its own cluster');
}

# ---------------------------------------------------------------- a password
{
    my $pc = SupportDesk::Cluster->new(password => 'pw');
    my $pr = $pc->client;
    $pr->set("sd:{$_}:seq", 1) for @apps;
    is($pr->dbsize, scalar @apps, 'a cluster with a password: the client authenticates to every master');
    my $m = ($pc->masters)[0];
    ok(!eval { Redis->new(server => $m, reconnect => 0)->get('x'); 1 } && $@ =~ /NOAUTH/,
       '... which refuse a client without it') or diag $@;
    my %rep = map { $_ => scalar $pc->node_client($_)->info('replication')->{master_link_status} } $pc->replicas;
    is_deeply([ values %rep ], [qw(up up up)], '... and the replicas are in sync (masterauth)');
}

done_testing;
