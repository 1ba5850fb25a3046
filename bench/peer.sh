# bench/peer.sh: make bench-peer, sourced by `bench/run --peer` (it uses
# bench/run's helpers: PIDS and cleanup, the ports, start_redis,
# start_nginx, seed, measure, median, the formatting helpers).
# bench/README.md describes the method and every figure.
#
# The module against its Node.js peer (bench/peer/server.js: Fastify +
# ioredis with auto-pipelining, one process, each upsert one EVALSHA of a
# plain script, bench/peer/upsert.lua), on the same redis-server, in the
# same run: issue 14's "Redis CPU per request no higher than the Node
# peer's".  Each serves an app of its own (bench: the module's storage
# layout, peer: the peer's), seeded with the same 10,000 seed-example
# customers through its own API.  The runs alternate (module first in odd
# runs, the peer first in even ones), so both see the same machine.
#
# Environment: BENCH_PEER_WORKLOADS (get upsert-update upsert-create list),
# BENCH_PEER_MODULES (the peer's node_modules: make bench-peer installs
# them in build/peer), BENCH_DURATION, BENCH_RUNS, BENCH_KEEP as for make
# bench.

PEER_WORKLOADS=${BENCH_PEER_WORKLOADS:-get upsert-update upsert-create list}
PEER_MODULES=${BENCH_PEER_MODULES:-$ROOT/build/peer/node_modules}
PEER_TARGET=1.00              # Redis CPU per request: module / peer
PEER_PID=

command -v node >/dev/null || die "node not found (make bench-peer installs it)"
[ -d "$PEER_MODULES/fastify" ] && [ -d "$PEER_MODULES/ioredis" ] \
    || die "no fastify and ioredis in $PEER_MODULES (make bench-peer installs them)"
for w in $PEER_WORKLOADS; do
    [ -f "$BENCH_DIR/wrk/$w.lua" ] || die "no workload $w (bench/wrk/$w.lua)"
done

T0=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

start_redis
KEY=$("$ROOT/redis/sd-key" -p "$REDIS_PORT" create bench "make bench-peer: the module")
PEER_KEY=$("$ROOT/redis/sd-key" -p "$REDIS_PORT" create peer "make bench-peer: the peer")
start_nginx
log "module: nginx 127.0.0.1:$API_PORT (worker $(worker_pid)), redis-server 127.0.0.1:$REDIS_PORT"

NODE_PATH=$PEER_MODULES PEER_PORT=$PEER_PORT REDIS_PORT=$REDIS_PORT \
    PEER_EVENTS_MAX=$EVENTS_MAX node "$BENCH_DIR/peer/server.js" \
    > "$TMP/peer.log" 2>&1 &
PEER_PID=$!
PIDS+=("$PEER_PID")
for _ in $(seq 100); do http_up "$PEER_PORT" && break; sleep 0.1; done
http_up "$PEER_PORT" || { cat "$TMP/peer.log" >&2; die "the peer did not start"; }
PEER_DESC="node $(node --version), fastify $(node -p "require('$PEER_MODULES/fastify/package.json').version"), ioredis $(node -p "require('$PEER_MODULES/ioredis/package.json').version")"
log "peer: $PEER_DESC on 127.0.0.1:$PEER_PORT (pid $PEER_PID), same redis-server"

log "seeding $SEEDED customers through each API (app bench: the module, app peer: the peer)"
seed cust- user $SEEDED > /dev/null
seed cust- user $SEEDED "$PEER_KEY" "$PEER_PORT" > /dev/null

# warm-up: the peer's JIT and both servers' connections
for w in $PEER_WORKLOADS; do
    [ "$w" != upsert-create ] || continue
    run_wrk "$w.lua" "$API_PORT" -t$THREADS -c$CONNS -d2s > /dev/null
    KEY=$PEER_KEY run_wrk "$w.lua" "$PEER_PORT" -t$THREADS -c$CONNS -d2s > /dev/null
done

: > "$TMP/runs"
for w in $PEER_WORKLOADS; do
    log "workload $w: $RUNS x ${DURATION}s against the module and, interleaved, the peer"
    for run in $(seq "$RUNS"); do
        if [ $((run % 2)) = 1 ]; then
            measure "$w" "$w.lua" "$API_PORT" module "$run"
            KEY=$PEER_KEY measure "$w" "$w.lua" "$PEER_PORT" peer "$run"
        else
            KEY=$PEER_KEY measure "$w" "$w.lua" "$PEER_PORT" peer "$run"
            measure "$w" "$w.lua" "$API_PORT" module "$run"
        fi
    done
done
cp "$TMP/runs" "$RESULTS/peer-runs.txt"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------

pmed() { awk -v n="$1" -v t="$2" -v c="$3" '$1 == n && $2 == t {print $c}' "$TMP/runs" | median; }
pbad() { awk -v n="$1" '$1 == n && $11 > 0 {s += $11} END {print s + 0}' "$TMP/runs"; }
# module ÷ peer of a column, median over the runs' pairs
pratio() { pair_ratio "$1" module "$2" "$1" peer; }

{
    echo "#### \`make bench-peer\`"
    echo
    echo "$(machine). wrk -t$THREADS -c$CONNS, ${DURATION}s per run, $RUNS runs against each, interleaved (odd runs the module first, even runs the peer first), medians; one redis-server with redis/redis.conf (AOF everysec) for both. Module: nginx worker_processes 1. Peer: $PEER_DESC, one process (bench/peer/server.js: ioredis auto-pipelining, an upsert one EVALSHA of bench/peer/upsert.lua, a list page ZRANGE + ZCARD then one HGETALL per customer). $(thousands $SEEDED) seed-example customers each, in an app of its own. Load average before the run: $LOAD0; after it: $LOAD1."
    echo
    echo "| workload | req/s: module / peer | worker CPU s / 1k req: module / peer | module ÷ peer | Redis CPU s / 1k req: module / peer | module ÷ peer | Redis commands / req (inside scripts included): module / peer | bad answers |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|"
    for w in $PEER_WORKLOADS; do
        printf '| %s | %s / %s | %s / %s | %s | %s / %s | **%s** | %s / %s | %s |\n' "$w" \
            "$(thousands "$(pmed "$w" module 4)")" "$(thousands "$(pmed "$w" peer 4)")" \
            "$(f4 "$(pmed "$w" module 8)")" "$(f4 "$(pmed "$w" peer 8)")" "$(ratio "$(pratio "$w" 8)" 1)" \
            "$(f4 "$(pmed "$w" module 9)")" "$(f4 "$(pmed "$w" peer 9)")" "$(ratio "$(pratio "$w" 9)" 1)" \
            "$(pmed "$w" module 10)" "$(pmed "$w" peer 10)" "$(pbad "$w")"
    done
    echo
    echo "| target (issue 14) | figure | target | |"
    echo "|---|--:|--:|---|"
    for w in $PEER_WORKLOADS; do
        r=$(pratio "$w" 9)
        printf '| Redis CPU per request ÷ the peer'"'"'s: %s | %s× | ≤ %s× | %s |\n' "$w" \
            "$(ratio "$r" 1)" "$PEER_TARGET" \
            "$(if [ "$(pbad "$w")" != 0 ]; then echo FAILED; elif awk -v r="$r" -v t=$PEER_TARGET 'BEGIN {exit !(r <= t)}'; then echo PASS; else echo MISS; fi)"
    done
    echo
    echo "Run time: $(( $(date +%s) - T0 )) s."
} > "$RESULTS/peer.md"
cat "$RESULTS/peer.md"
