# bench/cluster.sh: make bench-cluster, sourced by `bench/run --cluster`
# (it uses bench/run's helpers: PIDS and cleanup, free ports, run_wrk,
# nginx_conf_head, median, the formatting helpers).  bench/README.md
# describes the method and every figure.
#
# One redis-server and a Redis Cluster of 3 masters without replicas, every
# node redis-server with redis/redis.conf (the cluster's nodes plus
# --cluster-enabled yes); one nginx per storage (worker_processes 1, the
# API server only), the one with supportdesk_redis, the other with
# supportdesk_redis_cluster.  Three apps, one on each master (their {app}
# slots), the same three API keys and the same 10,000 customers per app on
# both storages; every request of a workload goes to one of the three apps
# at random (BENCH_KEYS).  A third nginx answers the same requests with
# "return 200" of the module's own answers (bench/run's HTTP ceiling, its
# bodies captured after seeding): issue 14's reference, beside both.  The
# runs alternate (single, cluster, ceiling in odd runs, the other way round
# in even ones), so all three see the same machine.  The Redis memory per
# customer is measured on both storages after the seeding.
#
# Environment: BENCH_CLUSTER_WORKLOADS (get upsert-update upsert-create
# list), BENCH_PERF=0 (no profile runs), BENCH_PIN=1 (workers on CPU 0,
# the Redis servers and wrk on CPU 1), BENCH_DURATION, BENCH_RUNS,
# BENCH_KEEP as for make bench.

CLUSTER_WORKLOADS=${BENCH_CLUSTER_WORKLOADS:-get upsert-update upsert-create list}
CLUSTER_TARGET=1.10           # worker CPU per request: cluster / single
# issue 14's targets, on the cluster: worker CPU per request ÷ return 200's
CEILING_TARGETS="get:1.3 upsert-update:1.5 upsert-create:1.8 list:2.5"
CEILING_INSTR_TARGET=1.6      # instructions per get ÷ return 200's
MEMORY_TARGET=250             # bytes of Redis memory per customer
PROFILED="get upsert-update"  # an extra run of each under perf (BENCH_PERF=0: none)
PERF_PERIOD=250000            # perf record: a sample every 250 µs of CPU time
# perf stat: every system call, and those that carry the traffic
SYSCALL_EVENTS=raw_syscalls:sys_enter
for c in recvfrom sendto writev readv read write epoll_wait; do
    SYSCALL_EVENTS+=",syscalls:sys_enter_$c"
done
NODE_PORTS=("$NODE_PORT_1" "$NODE_PORT_2" "$NODE_PORT_3")
NODE_BUS=("$NODE_BUS_1" "$NODE_BUS_2" "$NODE_BUS_3")
NODE_PIDS=()
declare -A PID_OF_PORT
RUNS_FILE=$TMP/cluster-runs

for w in $CLUSTER_WORKLOADS; do
    [ -f "$BENCH_DIR/wrk/$w.lua" ] || die "no workload $w (bench/wrk/$w.lua)"
done
p=
for w in $PROFILED; do [[ " $CLUSTER_WORKLOADS " != *" $w "* ]] || p+="${p:+ }$w"; done
PROFILED=$p

T0=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the storages ---------------------------------------------------------

start_redis
PID_OF_PORT[$REDIS_PORT]=$REDIS_PID

ncli() { local p=$1; shift; redis-cli -h 127.0.0.1 -p "$p" "$@"; }

# the nodes: the project's redis.conf (AOF everysec, listpack limits) as
# the single server has it, plus what a cluster node needs; each in a
# directory of its own (nodes.conf, its AOF)
for i in 0 1 2; do
    p=${NODE_PORTS[i]}
    mkdir -p "$TMP/cluster/$p"
    redis-server "$ROOT/redis/redis.conf" --port "$p" --bind 127.0.0.1 \
        --cluster-enabled yes --cluster-port "${NODE_BUS[i]}" \
        --cluster-config-file "$TMP/cluster/$p/nodes.conf" \
        --cluster-node-timeout 5000 \
        --dir "$TMP/cluster/$p" --save '' --logfile "$TMP/cluster/$p/redis.log" \
        --daemonize no &
    NODE_PIDS+=($!)
    PIDS+=($!)
    PID_OF_PORT[$p]=$!
done
for p in "${NODE_PORTS[@]}"; do
    for _ in $(seq 100); do [ "$(ncli "$p" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
    [ "$(ncli "$p" ping 2>/dev/null)" = PONG ] \
        || { tail -n 20 "$TMP/cluster/$p/redis.log" >&2; die "cluster node $p did not start"; }
done
redis-cli --cluster create "${NODE_PORTS[@]/#/127.0.0.1:}" --cluster-replicas 0 \
    --cluster-yes > "$TMP/cluster/create.log" 2>&1 \
    || { cat "$TMP/cluster/create.log" >&2; die "redis-cli --cluster create failed"; }
grep -q 'All 16384 slots covered' "$TMP/cluster/create.log" \
    || { cat "$TMP/cluster/create.log" >&2; die "redis-cli --cluster create: not all slots covered"; }
# every node says ok and agrees on every slot's owner
for _ in $(seq 300); do
    ok=1
    for p in "${NODE_PORTS[@]}"; do
        ncli "$p" cluster info | grep -q '^cluster_state:ok' || ok=
    done
    [ -n "$ok" ] && redis-cli --cluster check "127.0.0.1:${NODE_PORTS[0]}" 2>&1 \
        | grep -q 'All nodes agree about slots configuration' && break
    ok=
    sleep 0.1
done
[ -n "$ok" ] || die "the cluster did not become stable ($TMP/cluster)"

# Three apps, one on each master: the first names bench-<k> whose {app}
# slot that master owns (a node answers MOVED for the keys of others)
APPS=()
for k in $(seq 0 999); do
    for i in 0 1 2; do
        [ -z "${APPS[i]:-}" ] || continue
        case $(ncli "${NODE_PORTS[i]}" exists "sd:{bench-$k}:seq" 2>&1) in
            0|1) APPS[i]=bench-$k; break ;;
        esac
    done
    [ -z "${APPS[0]:-}" ] || [ -z "${APPS[1]:-}" ] || [ -z "${APPS[2]:-}" ] || break
done
[ ${#APPS[@]} = 3 ] || die "no app name found for every master"
APPS_DESC=
for i in 0 1 2; do
    APPS_DESC+="${APPS_DESC:+, }\`${APPS[i]}\` (slot $(ncli "${NODE_PORTS[0]}" cluster keyslot "${APPS[i]}"), master $((i + 1)))"
done

# the same API keys on both: sd-key on the single server, the same hash on
# the cluster (the master of its slot: redis-cli -c)
APP_KEYS=
for app in "${APPS[@]}"; do
    k=$("$ROOT/redis/sd-key" -p "$REDIS_PORT" create "$app" "make bench-cluster")
    h=$(printf '%s' "$k" | sha256sum | cut -c1-64)
    [ "$(redis-cli -c -h 127.0.0.1 -p "${NODE_PORTS[0]}" hset "sd:apikey:$h" app "$app" name "make bench-cluster")" = 2 ] \
        || die "could not write the key of $app on the cluster"
    APP_KEYS+="${APP_KEYS:+ }$k"
done
KEY=${APP_KEYS%% *}

# --- one nginx per storage -------------------------------------------------

SEEDS=$(printf '127.0.0.1:%s ' "${NODE_PORTS[@]}")
# cluster_nginx_conf NAME PORT [single]: the nginx.conf of NAME (single:
# on the one redis-server; cluster: supportdesk_redis_cluster), the API
# server only, worker_processes 1 (with "single": master_process off, for
# callgrind); NAME ceiling: the module loaded, as bench/run's ceiling
# server has it, and only the return 200 server (capture_bodies' answers)
cluster_nginx_conf() {
    local dir=$TMP/$1
    mkdir -p "$dir/logs" "$dir/tmp"
    if [ "$1" = ceiling ]; then
        {
            nginx_conf_head "$SO" "$dir" "${3:-}"
            cat <<END
    include $TMP/nginx/ceiling-bodies.conf;
    server {
        listen 127.0.0.1:$2;
        default_type "application/json; charset=utf-8";
        location = /bench-noop { return 204; }
        location / { include $TMP/nginx/ceiling-return.conf; }
    }
}
END
        } > "$dir/nginx.conf"
        "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e stderr -t -q
        return
    fi
    {
        if [ "$1" = single ]; then
            nginx_conf_head "$SO" "$dir" "${3:-}"
        else
            nginx_conf_head "$SO" "$dir" "${3:-}" \
                | sed "s|^    supportdesk_redis .*|    supportdesk_redis_cluster ${SEEDS% };|"
            [ -z "${BENCH_CLUSTER_CONNECTIONS:-}" ] \
                || echo "    supportdesk_redis_connections $BENCH_CLUSTER_CONNECTIONS;"
        fi
        cat <<END
    server {
        listen 127.0.0.1:$2;
        location /api/v1/ { supportdesk; }
        location = /bench-noop { return 204; }
    }
}
END
    } > "$dir/nginx.conf"
    "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e stderr -t -q
}

# cluster_nginx NAME PORT: starts it; sets LAST_NGINX_PID (its master)
cluster_nginx() {
    local dir=$TMP/$1
    cluster_nginx_conf "$1" "$2"
    "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e stderr &
    LAST_NGINX_PID=$!
    PIDS+=("$LAST_NGINX_PID")
    for _ in $(seq 100); do http_up "$2" && break; sleep 0.1; done
    http_up "$2" || die "nginx ($1) did not start ($dir/logs/error.log)"
}
cluster_nginx single "$API_PORT"
NGINX_PID=$LAST_NGINX_PID
cluster_nginx cluster "$CLUSTER_API_PORT"
CLUSTER_NGINX_PID=$LAST_NGINX_PID
declare -A PORT_OF=([single]=$API_PORT [cluster]=$CLUSTER_API_PORT)
declare -A MASTER_OF=([single]=$NGINX_PID [cluster]=$CLUSTER_NGINX_PID)
declare -A NODES_OF=([single]=$REDIS_PORT [cluster]="${NODE_PORTS[*]}")
log "redis-server 127.0.0.1:$REDIS_PORT, cluster 127.0.0.1:${NODE_PORTS[*]} (3 masters, no replicas); nginx single :$API_PORT, cluster :$CLUSTER_API_PORT; apps $APPS_DESC; temp dir $TMP"

# --- the same data on both, through the API --------------------------------

# used_memory of a storage: the one server, or the sum over the masters
storage_memory() {
    local p sum=0
    for p in ${NODES_OF[$1]}; do
        sum=$(( sum + $(ncli "$p" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}') ))
    done
    echo $sum
}
declare -A MEM0=() MEMPER=()
for target in single cluster; do MEM0[$target]=$(storage_memory "$target"); done

for target in single cluster; do
    i=0
    for app in "${APPS[@]}"; do
        k=$(cut -d' ' -f$((i + 1)) <<<"$APP_KEYS")
        i=$((i + 1))
        log "seeding $SEEDED customers of app $app through the API ($target)"
        line=$(KEY=$k BENCH_SEED_PREFIX=cust- BENCH_SEED_EMAIL=user BENCH_SEED_COUNT=$SEEDED \
               run_wrk seed.lua "${PORT_OF[$target]}" -t$THREADS -c$CONNS -d120s --timeout 10s)
        [ "$(field bad "$line")" = 0 ] && [ "$(field sockerr "$line")" = 0 ] \
            && [ "$(field created "$line")" = "$SEEDED" ] \
            || die "seeding app $app ($target) failed: $line"
    done
done
# where the data is: each app's customers on its own master, and all of
# them on the single server
for i in 0 1 2; do
    app=${APPS[i]}
    [ "$(rcli get "sd:{$app}:order:n")" = "$SEEDED" ] \
        && [ "$(ncli "${NODE_PORTS[i]}" get "sd:{$app}:order:n")" = "$SEEDED" ] \
        || die "app $app: $(rcli get "sd:{$app}:order:n") customers on the single server, $(ncli "${NODE_PORTS[i]}" get "sd:{$app}:order:n") on master $((i + 1)) (want $SEEDED)"
done
log "  keys: single $(rcli dbsize); cluster $(for p in "${NODE_PORTS[@]}"; do printf '%s ' "$(ncli "$p" dbsize)"; done)"

# Memory per customer on each storage, as make bench measures it: the feed
# each create added is deleted first (the workloads start new ones), so the
# figure is the customers and their indexes
for i in 0 1 2; do
    app=${APPS[i]}
    rcli del "sd:{$app}:events" "sd:{$app}:eventseq" > /dev/null
    ncli "${NODE_PORTS[i]}" del "sd:{$app}:events" "sd:{$app}:eventseq" > /dev/null
done
sleep 0.5
for target in single cluster; do
    MEMPER[$target]=$(( ( $(storage_memory "$target") - MEM0[$target] ) / (3 * SEEDED) ))
done
log "  memory per customer (used_memory after - before, the feed deleted): single ${MEMPER[single]} B, cluster ${MEMPER[cluster]} B"

# the return 200 ceiling: the module's own answers (through the single
# storage's nginx), served by a third nginx
mkdir -p "$TMP/nginx"
capture_bodies
log "ceiling bodies (bytes): $(tr '\n' ';' < "$TMP/ceiling-sizes")"
cluster_nginx ceiling "$CLUSTER_CEIL_PORT"
PORT_OF[ceiling]=$CLUSTER_CEIL_PORT
MASTER_OF[ceiling]=$LAST_NGINX_PID
NODES_OF[ceiling]=
TARGETS="single cluster ceiling"

export BENCH_APP_KEYS=$APP_KEYS

# BENCH_PIN=1: the masters (and the one Redis) off the workers' core, as on
# hosts of their own: each nginx worker on CPU 0, every redis-server and wrk
# on CPU 1 (both storages alike)
if [ "${BENCH_PIN:-0}" = 1 ]; then
    command -v taskset > /dev/null || die "BENCH_PIN=1: taskset not found"
    for target in $TARGETS; do
        taskset -a -p -c 0 "$(worker_pid "${MASTER_OF[$target]}")" > /dev/null
    done
    for p in "${!PID_OF_PORT[@]}"; do taskset -a -p -c 1 "${PID_OF_PORT[$p]}" > /dev/null; done
    export WRK_PREFIX="taskset -c 1"
    log "pinned: nginx workers on CPU 0, redis-server and wrk on CPU 1"
fi

# --- measuring ---------------------------------------------------------------

# ctxt PID: "voluntary involuntary" context switches of a process so far
ctxt() {
    awk '$1 == "voluntary_ctxt_switches:" {v = $2}
         $1 == "nonvoluntary_ctxt_switches:" {n = $2} END {print v, n}' "/proc/$1/status"
}

# node_snap PORT: "cpu_ticks calls moved ask" of a node: its utime + stime,
# the sum of calls of INFO commandstats (INFO itself excluded), the MOVED
# and ASK errors it answered (INFO errorstats)
node_snap() {
    local t
    t=$(cpu_ticks "${PID_OF_PORT[$1]}")
    ncli "$1" info commandstats errorstats | tr -d '\r' | awk -F'[:=,]' -v t="$t" '
        /^cmdstat_/ && $1 != "cmdstat_info" {c += $3}
        $1 == "errorstat_MOVED" {m = $3} $1 == "errorstat_ASK" {a = $3}
        END {printf "%d %d %d %d\n", t, c, m, a}'
}

# cmeasure NAME TARGET RUN: one wrk run of workload NAME against TARGET
# (single, cluster); appends to RUNS_FILE "name target run rps p50 p99
# p999 wcpu rcpu cmds bad moved ask wcpu-user vcsw ivcsw rcpu<node>...", CPU
# in s per 1k requests (wcpu-user: the worker's user time alone, utime),
# the worker's voluntary and involuntary context switches per request,
# Redis figures summed over the target's nodes, then per node
cmeasure() {
    local name=$1 target=$2 run=$3 w w0 w1 u0 u1 x0 x1 line p req dur
    local -a before after
    w=$(worker_pid "${MASTER_OF[$target]}")
    w0=$(cpu_ticks "$w"); u0=$(awk '{print $14}' "/proc/$w/stat"); x0=$(ctxt "$w")
    before=()
    for p in ${NODES_OF[$target]}; do before+=("$(node_snap "$p")"); done
    line=$(run_wrk "$name.lua" "${PORT_OF[$target]}" -t$THREADS -c$CONNS -d${DURATION}s)
    w1=$(cpu_ticks "$w"); u1=$(awk '{print $14}' "/proc/$w/stat"); x1=$(ctxt "$w")
    after=()
    for p in ${NODES_OF[$target]}; do after+=("$(node_snap "$p")"); done
    req=$(field requests "$line"); dur=$(field duration_us "$line")
    # the ceiling has no Redis: no lines
    : > "$TMP/snap.before"
    : > "$TMP/snap.after"
    [ ${#before[@]} = 0 ] || printf '%s\n' "${before[@]}" > "$TMP/snap.before"
    [ ${#after[@]} = 0 ] || printf '%s\n' "${after[@]}" > "$TMP/snap.after"
    awk -v n="$name" -v t="$target" -v run="$run" -v req="$req" -v dur="$dur" \
        -v bad="$(( $(field bad "$line") + $(field sockerr "$line") ))" \
        -v p50="$(field p50 "$line")" -v p99="$(field p99 "$line")" -v p999="$(field p999 "$line")" \
        -v wc=$((w1 - w0)) -v wu=$((u1 - u0)) -v hz="$CLK_TCK" \
        -v xv=$(( ${x1% *} - ${x0% *} )) -v xn=$(( ${x1#* } - ${x0#* } )) '
        NR == FNR {b[FNR] = $0; next}
        {split(b[FNR], x); rc[FNR] = ($1 - x[1]) / hz / req * 1000
         r += $1 - x[1]; c += $2 - x[2]; m += $3 - x[3]; a += $4 - x[4]; k = FNR}
        END {
            printf "%s %s %d %.1f %d %d %d %.4f %.4f %.3f %d %d %d %.4f %.3f %.3f", n, t, run,
                req / (dur / 1e6), p50, p99, p999, wc / hz / req * 1000,
                r / hz / req * 1000, c / req, bad, m, a, wu / hz / req * 1000,
                xv / req, xn / req
            for (i = 1; i <= k; i++) printf " %.4f", rc[i]
            printf "\n"
        }' "$TMP/snap.before" "$TMP/snap.after" >> "$RUNS_FILE"
    log "  $name $target run $run: $(tail -n 1 "$RUNS_FILE" | awk '{
        printf "%.0f req/s, worker %.4f / redis %.4f CPU s per 1k, %.2f cmds/req, %d MOVED, %d ASK, %d bad", $4, $8, $9, $10, $12, $13, $11}')"
}

# ctop_level NAME TARGET: Redis commands per request the gateway sends,
# summed over the target's nodes: one MONITOR per node while exactly
# MONITOR_REQUESTS requests run on one connection; commands inside scripts
# (from "lua") are not sent.  Not counted (shown in the detail): the timer
# work (the job poll on sd:jobs, key cache refreshes of sd:apikey:*) and the
# upkeep of connections and of the slot map (CLUSTER SLOTS, SCRIPT LOAD,
# ...); ASKING is counted with the redirects.  Sets TOPLEVEL[NAME:TARGET]
declare -A TOPLEVEL TOPDETAIL
ctop_level() {
    local name=$1 target=$2 p line n mon=$TMP/monitor.$1.$2
    local -a mpids=()
    for p in ${NODES_OF[$target]}; do
        # redis-cli itself, not the function ncli: $! must be its pid
        redis-cli -h 127.0.0.1 -p "$p" monitor > "$mon.$p" &
        mpids+=($!)
        PIDS+=($!)
    done
    sleep 0.3
    line=$(WRK_THREADS=1 BENCH_STOP_AFTER=$MONITOR_REQUESTS \
           run_wrk "$name.lua" "${PORT_OF[$target]}" -t1 -c1 -d60s)
    sleep 0.3
    for p in "${mpids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
    [ "$(field bad "$line")" = 0 ] && [ "$(field requests "$line")" = $MONITOR_REQUESTS ] \
        || die "$name $target top-level sample: $line"
    for p in ${NODES_OF[$target]}; do
        awk -v node="$p" '$3 != "lua]" && $2 ~ /^\[/ {
            cmd = toupper($4); gsub(/"/, "", cmd); key = $5
            if (cmd == "EVALSHA" || cmd == "EVAL") key = $7
            gsub(/"/, "", key)
            if (cmd == "ASKING") print "redirect", cmd
            else if (key ~ /^sd:jobs/) print "job-poll", cmd
            else if (key ~ /^sd:apikey:/) print "key-cache", cmd
            else if (cmd ~ /^(CLUSTER|SCRIPT|PING|AUTH|HELLO|SELECT|CLIENT|ROLE|READONLY|INFO)$/)
                print "upkeep", cmd
            else print "sent", cmd
        }' "$mon.$p"
    done > "$mon.cmds"
    n=$(grep -c '^sent ' "$mon.cmds" || true)
    TOPLEVEL[$name:$target]=$(awk -v n="$n" -v r=$MONITOR_REQUESTS 'BEGIN {printf "%.4f\n", n / r}')
    # e.g. "sent HGETALL 2000, not counted: job-poll EVALSHA 2, key-cache HGET 3"
    TOPDETAIL[$name:$target]=$(sort "$mon.cmds" | uniq -c | awk '
        $2 == "sent" || $2 == "redirect" {a = a (a == "" ? "" : ", ") $2 " " $3 " " $1; next}
        {b = b (b == "" ? "" : ", ") $2 " " $3 " " $1}
        END {printf "%s%s", a, (b == "" ? "" : "; not counted: " b)}')
}

# cprofile NAME TARGET: one more run of NAME against TARGET, not among the
# measured ones: the worker under `perf record` (cpu-clock, self time),
# and the system calls of the worker and of the target's Redis nodes
# (perf stat of the syscalls:sys_enter_* tracepoints).  Writes
# bench/results/perf.NAME.TARGET.txt (the worker's top functions) and sets
# SYSCALLS[NAME:TARGET] ("worker total, its top kinds; redis total")
declare -A SYSCALLS=() PERFDSO=()
cprofile() {
    local name=$1 target=$2 w rp p line req pr ps1 ps2 w0 w1 data=$TMP/perf.$1.$2.data
    w=$(worker_pid "${MASTER_OF[$target]}")
    rp=
    for p in ${NODES_OF[$target]}; do rp+="${rp:+,}${PID_OF_PORT[$p]}"; done
    perf record -q -m 1024 -e cpu-clock -c $PERF_PERIOD -p "$w" -o "$data" > /dev/null 2>&1 &
    pr=$!; PIDS+=($pr)
    perf stat -e "$SYSCALL_EVENTS" -x, -p "$w" -o "$TMP/sys.$name.$target.worker" &
    ps1=$!; PIDS+=($ps1)
    perf stat -e "$SYSCALL_EVENTS" -x, -p "$rp" -o "$TMP/sys.$name.$target.redis" &
    ps2=$!; PIDS+=($ps2)
    sleep 0.5
    w0=$(cpu_ticks "$w")
    line=$(run_wrk "$name.lua" "${PORT_OF[$target]}" -t$THREADS -c$CONNS -d${DURATION}s)
    w1=$(cpu_ticks "$w")
    for p in $pr $ps1 $ps2; do kill -INT "$p" 2>/dev/null || true; done
    for p in $pr $ps1 $ps2; do wait "$p" 2>/dev/null || true; done
    req=$(field requests "$line")
    [ "$(field bad "$line")" = 0 ] || die "$name $target profile run: $line"
    PERFDSO[$name:$target]=$(perf_profile "$data" "$RESULTS/perf.$name.$target.txt" \
        "# make bench-cluster: $name against the $target storage, $req requests in ${DURATION}s,
# the nginx worker under perf record -e cpu-clock -c $PERF_PERIOD (a sample every $((PERF_PERIOD / 1000)) µs
# of its CPU time); self time, samples" $((w1 - w0)) "$req")
    # per request: the worker's calls, its four most frequent kinds, and
    # the Redis nodes' calls (all their threads)
    sysc() { awk -F, -v req="$req" '$3 == "raw_syscalls:sys_enter" {printf "%.2f", $1 / req}' "$1"; }
    SYSCALLS[$name:$target]="worker $(sysc "$TMP/sys.$name.$target.worker") ($(awk -F, -v req="$req" '
        $1 + 0 > 0 && $3 ~ /^syscalls:/ {k = $3; sub(/.*sys_enter_/, "", k); printf "%.2f %s\n", $1 / req, k}' \
        "$TMP/sys.$name.$target.worker" | sort -rn | head -4 | awk '{printf "%s%s %s", s, $2, $1; s = ", "}')); Redis $(sysc "$TMP/sys.$name.$target.redis")"
    log "  $name $target, profile run: worker $(awk -v t=$((w1 - w0)) -v hz="$CLK_TCK" -v req="$req" 'BEGIN {printf "%.4f", t / hz / req * 1000}') CPU s per 1k; system calls per request: ${SYSCALLS[$name:$target]}; bench/results/perf.$name.$target.txt"
}

log "warm-up: 2 s of get against each"
for target in $TARGETS; do
    run_wrk get.lua "${PORT_OF[$target]}" -t$THREADS -c$CONNS -d2s > /dev/null
done

for name in $CLUSTER_WORKLOADS; do
    log "workload $name: $RUNS x ${DURATION}s against each, interleaved (wrk -t$THREADS -c$CONNS, 3 apps)"
    for run in $(seq "$RUNS"); do
        if [ $((run % 2)) = 1 ]; then order=$TARGETS
        else order=$(tr ' ' '\n' <<<"$TARGETS" | tac | tr '\n' ' '); fi
        for target in $order; do cmeasure "$name" "$target" "$run"; done
    done
    if [ "${BENCH_PERF:-1}" != 0 ] && [[ " $PROFILED " == *" $name "* ]]; then
        for target in single cluster; do cprofile "$name" "$target"; done
    fi
    for target in single cluster; do
        ctop_level "$name" "$target"
        log "  $target: Redis commands sent per request ${TOPLEVEL[$name:$target]} (${TOPDETAIL[$name:$target]})"
    done
done
cp "$RUNS_FILE" "$RESULTS/cluster-runs.txt"

# --- instructions per request: callgrind, one connection --------------------
#
# Repeatable where time is not (make bench-instr's method): each nginx in
# turn runs again as one process under callgrind, INSTR_WARMUP requests, a
# dump, exactly INSTR_REQUESTS requests on one connection (-t1 -c1), a
# dump; Ir between the two / requests.  One request at a time, so both
# modes send one command per turn of the event loop: the figure is the
# code's own cost in each mode, without what batching changes.
declare -A IR=()
# cinstr_case NAME TARGET PID: Ir per request
cinstr_case() {
    local name=$1 target=$2 label=$1.$2 line dump ir
    line=$(WRK_THREADS=1 BENCH_STOP_AFTER=$INSTR_WARMUP \
           run_wrk "$name.lua" "${PORT_OF[$target]}" -t1 -c1 -d600s --timeout 60s)
    [ "$(field bad "$line")" = 0 ] || die "$label warm-up under callgrind: $line"
    callgrind_control --dump="warm-$label" "$3" > /dev/null 2>&1
    line=$(WRK_THREADS=1 BENCH_STOP_AFTER=$INSTR_REQUESTS \
           run_wrk "$name.lua" "${PORT_OF[$target]}" -t1 -c1 -d600s --timeout 60s)
    [ "$(field bad "$line")" = 0 ] && [ "$(field requests "$line")" = $INSTR_REQUESTS ] \
        || die "$label under callgrind: $line"
    callgrind_control --dump="$label" "$3" > /dev/null 2>&1
    dump=$(grep -l -x "desc: Trigger: dump $label" "$TMP/callgrind.$target.out".* | head -1)
    [ -n "$dump" ] || die "no callgrind dump for $label"
    cp "$dump" "$RESULTS/callgrind.cluster-bench.$label.out"
    "$BENCH_DIR/cgtop.pl" "$dump" 25 $INSTR_REQUESTS > "$RESULTS/callgrind.cluster-bench.$label.top.txt"
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
    echo $((ir / INSTR_REQUESTS))
}
if [ "${BENCH_CLUSTER_INSTR:-1}" != 0 ]; then
    command -v callgrind_control >/dev/null || die "valgrind not found (make bench-cluster installs it)"
    log "instructions per request under callgrind: $INSTR_WARMUP + $INSTR_REQUESTS requests of $PROFILED on one connection, each nginx in turn"
    for target in $TARGETS; do
        m=${MASTER_OF[$target]}
        kill -QUIT "$m"
        for _ in $(seq 100); do kill -0 "$m" 2>/dev/null || break; sleep 0.1; done
        cluster_nginx_conf "$target" "${PORT_OF[$target]}" single
        valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.$target.out" \
            --dump-instr=no --collect-jumps=no \
            "$NGINX" -p "$TMP/$target/" -c "$TMP/$target/nginx.conf" -e stderr \
            2> "$TMP/valgrind.$target.log" &
        vpid=$!
        PIDS+=($vpid)
        for _ in $(seq 600); do http_up "${PORT_OF[$target]}" && break; sleep 0.1; done
        http_up "${PORT_OF[$target]}" \
            || { cat "$TMP/valgrind.$target.log" >&2; die "nginx ($target) under callgrind did not start"; }
        for name in $PROFILED; do
            IR[$name:$target]=$(cinstr_case "$name" "$target" "$vpid")
            log "  $name $target: ${IR[$name:$target]} Ir per request"
        done
        kill -QUIT "$vpid"
        for _ in $(seq 100); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
    done
fi
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------

f4() { awk -v x="$1" 'BEGIN {printf "%.4f", x}'; }

# cmed NAME TARGET COLUMN: the median over the runs
cmed() { awk -v n="$1" -v t="$2" -v c="$3" '$1 == n && $2 == t {print $c}' "$RUNS_FILE" | median; }
# csum NAME TARGET COLUMN: the sum over the runs
csum() { awk -v n="$1" -v t="$2" -v c="$3" '$1 == n && $2 == t {s += $c} END {print s + 0}' "$RUNS_FILE"; }
# cbad NAME: the bad answers of a workload's runs, every target's
cbad() { awk -v n="$1" '$1 == n && $11 > 0 {s += $11} END {print s + 0}' "$RUNS_FILE"; }
# cpair NAME COLUMN [A B]: the median over the runs i of A / B (by default
# cluster / single)
cpair() {
    awk -v n="$1" -v c="$2" -v ta="${3:-cluster}" -v tb="${4:-single}" '
        $1 == n && $2 == ta {a[$3] = $c}
        $1 == n && $2 == tb {b[$3] = $c}
        END {for (i in a) if (b[i] > 0) printf "%.4f\n", a[i] / b[i]}' "$RUNS_FILE" | median
}

{
    echo "#### \`make bench-cluster\`"
    echo
    echo "$(machine). wrk -t$THREADS -c$CONNS, ${DURATION}s per run, $RUNS runs against each, interleaved (odd runs single, cluster, \`return 200\`; even runs the other way round), medians; each nginx worker_processes 1 (supportdesk_redis_connections 2, per master on the cluster). \`return 200\`: a third nginx (the module loaded, no location of it) answering the same requests with the module's own answers, captured after seeding (make bench's HTTP ceiling). Single: one redis-server with redis/redis.conf (AOF everysec). Cluster: 3 masters, no replicas, each redis-server with redis/redis.conf + --cluster-enabled yes. Apps $APPS_DESC; $SEEDED customers each on both; every request goes to one of the three at random. Load average before the run: $LOAD0; after it: $LOAD1.$([ "${BENCH_PIN:-0}" != 1 ] || echo " Pinned (BENCH_PIN=1): each nginx worker on CPU 0, every redis-server and wrk on CPU 1.")"
    echo
    echo "| workload | req/s: single / cluster / \`return 200\` | worker CPU s / 1k req: single / cluster (of which user time) / \`return 200\` | cluster ÷ single | Redis round trips / req: single / cluster (all commands incl. scripts) | MOVED / ASK (all runs) | Redis CPU s / 1k req: single / cluster (sum) | cluster ÷ single | cluster, per shard (s / 1k requests of the run): master 1 / 2 / 3 | worker context switches / req, voluntary + involuntary: single / cluster |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for name in $CLUSTER_WORKLOADS; do
        fs=$(cbad "$name")
        if [ "$fs" != 0 ]; then
            echo "| $name | FAILED ($(csum "$name" single 11) bad answers single, $(csum "$name" cluster 11) cluster, $(csum "$name" ceiling 11) \`return 200\`) | | | | | | | | |"
            continue
        fi
        echo "| $name | $(thousands "$(cmed "$name" single 4)") / $(thousands "$(cmed "$name" cluster 4)") / $(thousands "$(cmed "$name" ceiling 4)") | $(f4 "$(cmed "$name" single 8)") / $(f4 "$(cmed "$name" cluster 8)") (user $(f4 "$(cmed "$name" single 14)") / $(f4 "$(cmed "$name" cluster 14)")) / $(f4 "$(cmed "$name" ceiling 8)") | $(f2 "$(cpair "$name" 8)") | $(f2 "${TOPLEVEL[$name:single]}") / $(f2 "${TOPLEVEL[$name:cluster]}") ($(f2 "$(cmed "$name" single 10)") / $(f2 "$(cmed "$name" cluster 10)")) | $(csum "$name" cluster 12) / $(csum "$name" cluster 13) | $(f4 "$(cmed "$name" single 9)") / $(f4 "$(cmed "$name" cluster 9)") | $(f2 "$(cpair "$name" 9)") | $(f4 "$(cmed "$name" cluster 17)") / $(f4 "$(cmed "$name" cluster 18)") / $(f4 "$(cmed "$name" cluster 19)") | $(f2 "$(cmed "$name" single 15)") + $(f2 "$(cmed "$name" single 16)") / $(f2 "$(cmed "$name" cluster 15)") + $(f2 "$(cmed "$name" cluster 16)") |"
    done
    echo
    echo "| target (issue 11) | figure | target | ratio | |"
    echo "|---|--:|--:|--:|---|"
    for name in $CLUSTER_WORKLOADS; do
        case $name in get|upsert-update) ;; *) continue ;; esac
        fs=$(cbad "$name")
        if [ "$fs" != 0 ]; then
            echo "| $name: worker CPU per request, cluster ÷ single | FAILED | ≤ ${CLUSTER_TARGET}× | | MISS |"
            continue
        fi
        r=$(f2 "$(cpair "$name" 8)")
        echo "| $name: worker CPU per request, cluster ÷ single | ${r}× | ≤ ${CLUSTER_TARGET}× | $(ratio "$r" "$CLUSTER_TARGET") | $(check "$r" '<=' "$CLUSTER_TARGET") |"
    done
    for name in $CLUSTER_WORKLOADS; do
        t=${TOPLEVEL[$name:cluster]}
        m=$(( $(csum "$name" cluster 12) + $(csum "$name" cluster 13) ))
        echo "| $name: Redis round trips per request on the cluster (MOVED + ASK in its runs) | $(f2 "$t") ($m) | ≤ 1.0 (0) | $(ratio "$(f2 "$t")" 1) | $(if [ "$(check "$t" '<=' 1.0)" = PASS ] && [ "$m" = 0 ]; then echo PASS; else echo MISS; fi) |"
    done
    echo
    echo "| target (issue 14, on the cluster) | figure | target | ratio | |"
    echo "|---|--:|--:|--:|---|"
    for pair in $CEILING_TARGETS; do
        name=${pair%%:*}; t=${pair#*:}
        [[ " $CLUSTER_WORKLOADS " == *" $name "* ]] || continue
        label="$name: worker CPU per request on the cluster ÷ \`return 200\`'s"
        fs=$(cbad "$name")
        if [ "$fs" != 0 ]; then echo "| $label | FAILED | ≤ ${t}× | | MISS |"; continue; fi
        r=$(f2 "$(cpair "$name" 8 cluster ceiling)")
        echo "| $label | ${r}× (single: $(f2 "$(cpair "$name" 8 single ceiling)")×; \`return 200\` $(f4 "$(cmed "$name" ceiling 8)") s / 1k) | ≤ ${t}× | $(ratio "$r" "$t") | $(check "$r" '<=' "$t") |"
    done
    if [ -n "${IR[get:ceiling]:-}" ]; then
        r=$(ratio "${IR[get:cluster]}" "${IR[get:ceiling]}")
        echo "| get: instructions per request on the cluster ÷ \`return 200\`'s (callgrind, below) | ${r}× (single: $(ratio "${IR[get:single]}" "${IR[get:ceiling]}")×) | ≤ ${CEILING_INSTR_TARGET}× | $(ratio "$r" "$CEILING_INSTR_TARGET") | $(check "$r" '<=' "$CEILING_INSTR_TARGET") |"
    fi
    echo "| Redis memory per seed-example customer on the cluster, every index included (used_memory of the 3 masters after the seeding − before, the feed deleted, ÷ $(thousands $((3 * SEEDED))) customers) | ${MEMPER[cluster]} B (single, the same customers: ${MEMPER[single]} B) | ≤ ${MEMORY_TARGET} B | $(ratio "${MEMPER[cluster]}" "$MEMORY_TARGET") | $(check "${MEMPER[cluster]}" '<=' "$MEMORY_TARGET") |"
    if [ ${#IR[@]} -gt 0 ]; then
        echo
        echo "| \`callgrind\`, one connection | Ir per request: single | cluster | cluster ÷ single | \`return 200\` | cluster ÷ \`return 200\` |"
        echo "|---|--:|--:|--:|--:|--:|"
        for name in $PROFILED; do
            echo "| $name | $(thousands "${IR[$name:single]}") | $(thousands "${IR[$name:cluster]}") | $(ratio "${IR[$name:cluster]}" "${IR[$name:single]}") | $(thousands "${IR[$name:ceiling]:-0}") | $(ratio "${IR[$name:cluster]}" "${IR[$name:ceiling]:-0}") |"
        done
    fi
    if [ ${#PERFDSO[@]} -gt 0 ]; then
        echo
        echo "Where the worker's CPU goes (perf record in the same extra runs: each object's share of the samples × the worker's CPU per request in that run, from /proc; perf's own cost included):"
        echo
        hdr="| µs per request |"; sep="|---|"
        for name in $PROFILED; do hdr+=" $name: single | cluster |"; sep+="--:|--:|"; done
        echo "$hdr"; echo "$sep"
        for d in $PERF_OBJECTS; do
            row="| $(perf_row "$d") |"
            for name in $PROFILED; do
                for target in single cluster; do
                    v=$(tr ' ' '\n' <<<"${PERFDSO[$name:$target]:-}" | sed -n "s/^$d=//p")
                    row+=" ${v:-0.0} |"
                done
            done
            echo "$row"
        done
    fi
    if [ ${#SYSCALLS[@]} -gt 0 ]; then
        echo
        echo "System calls per request (perf stat, one more ${DURATION}s run of each, not among the measured ones; the worker's profile in bench/results/perf.<workload>.<single|cluster>.txt):"
        echo
        for name in $PROFILED; do
            for target in single cluster; do
                [ -n "${SYSCALLS[$name:$target]:-}" ] || continue
                echo "- $name, $target: ${SYSCALLS[$name:$target]}"
            done
        done
    fi
    echo
    echo "Commands the gateway sent in the MONITOR samples ($MONITOR_REQUESTS requests on one connection; one MONITOR per node of the target, summed):"
    echo
    for name in $CLUSTER_WORKLOADS; do
        for target in single cluster; do
            echo "- $name, $target: ${TOPDETAIL[$name:$target]}"
        done
    done
} > "$RESULTS/cluster.md"
cat "$RESULTS/cluster.md"
log "done in $(( $(date +%s) - T0 )) s; bench/results/cluster.md, per-run figures in bench/results/cluster-runs.txt"
if grep -q '| FAILED' "$RESULTS/cluster.md"; then
    log "some workloads FAILED (non-2xx responses)"
    exit 1
fi
