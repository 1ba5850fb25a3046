# bench/profile.sh: make bench-profile, sourced by `bench/run --profile` (it
# uses bench/run's helpers: PIDS and cleanup, start_redis, start_nginx,
# seed, capture_bodies, run_wrk, the formatting helpers).
#
# Where a request's worker CPU goes, the module's against the `return 200`
# ceiling's answer of the same bytes: for each workload one run against the
# module and one against the ceiling (the same nginx worker, the same wrk
# settings as make bench), each under `perf record -e cpu-clock` (the
# worker's self time by object: kernel, nginx, libc, the module, hiredis,
# jansson, libcrypto) and `perf stat` of its system calls.  µs per request
# in an object = its share of the samples x the worker's CPU per request in
# that run (/proc).  Writes bench/results/profile.md and, per run,
# bench/results/perf.profile.<workload>.<module|ceiling>.txt.
#
# Environment: BENCH_PROFILE_WORKLOADS (get upsert-update upsert-create
# list), BENCH_DURATION, BENCH_KEEP as for make bench.

PROFILE_WORKLOADS=${BENCH_PROFILE_WORKLOADS:-get upsert-update upsert-create list}
PROFILE_PERIOD=250000           # a sample every 250 µs of the worker's CPU
PROFILE_SYSCALLS=raw_syscalls:sys_enter
for c in recvfrom sendto writev readv read write epoll_wait; do
    PROFILE_SYSCALLS+=",syscalls:sys_enter_$c"
done

command -v perf > /dev/null || die "perf not found (make bench-profile installs it)"

T0=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
start_redis
KEY=$("$ROOT/redis/sd-key" -p "$REDIS_PORT" create bench "make bench-profile")
start_nginx
log "seeding $SEEDED customers through the API"
seed cust- user $SEEDED > /dev/null
capture_bodies
reload_nginx
run_wrk get.lua "$API_PORT" -t$THREADS -c$CONNS -d2s > /dev/null
run_wrk get.lua "$CEIL_PORT" -t$THREADS -c$CONNS -d2s > /dev/null

# profile_run NAME TARGET PORT: one run under perf; sets PROF[NAME:TARGET]
# ("kernel=13.2 nginx=3.4 ... total=20.8", µs per request) and
# SYSC[NAME:TARGET] (system calls per request)
declare -A PROF=() SYSC=() RPS=()
profile_run() {
    local name=$1 target=$2 port=$3 w pr ps data line req t0 t1 tag
    tag=$name.$target
    data=$TMP/perf.$tag.data
    w=$(worker_pid)
    perf record -q -m 1024 -e cpu-clock -c $PROFILE_PERIOD -p "$w" -o "$data" \
        > /dev/null 2>&1 &
    pr=$!; PIDS+=($pr)
    perf stat -e "$PROFILE_SYSCALLS" -x, -p "$w" -o "$TMP/sys.$tag" &
    ps=$!; PIDS+=($ps)
    sleep 0.5
    t0=$(cpu_ticks "$w")
    line=$(run_wrk "$name.lua" "$port" -t$THREADS -c$CONNS -d${DURATION}s)
    t1=$(cpu_ticks "$w")
    kill -INT $pr $ps 2>/dev/null || true
    wait $pr $ps 2>/dev/null || true
    req=$(field requests "$line")
    [ "$(field bad "$line")" = 0 ] || die "$name $target profile run: $line"
    RPS[$name:$target]=$(awk -v r="$req" -v d="$(field duration_us "$line")" \
        'BEGIN {printf "%.0f", r / (d / 1e6)}')
    PROF[$name:$target]=$(perf_profile "$data" "$RESULTS/perf.profile.$tag.txt" \
        "# make bench-profile: $name against the $target, $req requests in ${DURATION}s,
# the nginx worker under perf record -e cpu-clock -c $PROFILE_PERIOD; self time, samples" \
        $((t1 - t0)) "$req")
    SYSC[$name:$target]=$(awk -F, -v req="$req" '
        $3 == "raw_syscalls:sys_enter" {all = $1 / req}
        $1 + 0 > 0 && $3 ~ /^syscalls:/ {
            k = $3; sub(/.*sys_enter_/, "", k); d = d sprintf("%s %.2f, ", k, $1 / req) }
        END {sub(/, $/, "", d); printf "%.2f (%s)", all, d}' "$TMP/sys.$tag")
    log "  $name $target: ${RPS[$name:$target]} req/s; µs per request: ${PROF[$name:$target]}; system calls: ${SYSC[$name:$target]}"
}

for name in $PROFILE_WORKLOADS; do
    [ -f "$BENCH_DIR/wrk/$name.lua" ] || die "no workload $name"
    log "workload $name: one ${DURATION}s run against the module, one against the ceiling, under perf"
    profile_run "$name" module "$API_PORT"
    profile_run "$name" ceiling "$CEIL_PORT"
done

# us NAME TARGET OBJECT: µs per request of OBJECT in that run
us() { tr ' ' '\n' <<<"${PROF[$1:$2]}" | sed -n "s/^$3=//p" | grep . || echo 0.0; }

{
    echo "#### Where the worker's CPU goes: \`make bench-profile\`"
    echo
    echo "$(machine). wrk -t$THREADS -c$CONNS, one ${DURATION}s run of each against the module and against the \`return 200\` ceiling (the same worker, the same answer bytes), the worker under \`perf record -e cpu-clock\`: each object's share of the samples × the worker's CPU per request in that run (/proc; perf's own cost included). Load average before: $LOAD0; after: $(cut -d' ' -f1-3 /proc/loadavg); $(( $(date +%s) - T0 )) s."
    echo
    hdr="| µs per request |"; sep="|---|"
    for name in $PROFILE_WORKLOADS; do hdr+=" $name: module | ceiling | + |"; sep+="--:|--:|--:|"; done
    echo "$hdr"; echo "$sep"
    for d in $PERF_OBJECTS; do
        row="| $(perf_row "$d") |"
        [ "$d" != total ] || row="| **total** |"
        for name in $PROFILE_WORKLOADS; do
            m=$(us "$name" module "$d"); c=$(us "$name" ceiling "$d")
            row+=" $m | $c | $(awk -v a="$m" -v b="$c" 'BEGIN {printf "%+.1f", a - b}') |"
        done
        echo "$row"
    done
    row="| total ÷ ceiling's |"
    for name in $PROFILE_WORKLOADS; do
        row+=" $(ratio "$(us "$name" module total)" "$(us "$name" ceiling total)")× | | |"
    done
    echo "$row"
    row="| req/s |"
    for name in $PROFILE_WORKLOADS; do
        row+=" $(thousands "${RPS[$name:module]}") | $(thousands "${RPS[$name:ceiling]}") | |"
    done
    echo "$row"
    echo
    echo "System calls of the worker per request (\`perf stat\` in the same runs):"
    echo
    for name in $PROFILE_WORKLOADS; do
        echo "- $name: module ${SYSC[$name:module]}; ceiling ${SYSC[$name:ceiling]}"
    done
    echo
    echo "Each run's top functions: \`bench/results/perf.profile.<workload>.<module|ceiling>.txt\`."
} > "$RESULTS/profile.md"
cat "$RESULTS/profile.md"
log "done in $(( $(date +%s) - T0 )) s; bench/results/profile.md"
