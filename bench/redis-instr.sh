#!/usr/bin/env bash
# bench/redis-instr.sh [REV]: redis-server instructions per call of the
# write scripts, the checkout's redis/*.lua against those of git revision REV
# (default HEAD), in one run (make bench-redis-instr).
#
# A private redis-server on a loopback port runs under callgrind; every
# script is loaded as the gateway loads it (lib.lua in front), and each case
# is called by redis-benchmark (-P 16, one connection): 2,000 calls to warm
# up, then the counters are zeroed and BENCH_REDIS_CALLS calls (default
# 4,000) are counted.  Cases, with the change feed on as the gateway sends
# them:
#   upsert-update  a PATCH of one customer's phone (a new value each call:
#                  every call changes the customer and appends its event)
#   upsert-create  a new seed-example customer each call
#   note-create    a note on one customer
#   notifications  one setting flipped (a change and its event each call)
#   list           the first page (limit 20) of 40 seed-example customers,
#                  a read: no event (the reply's own cost counts: Redis
#                  writes it for the worker to read)
# Printed: instructions per call for REV and for the checkout, and their
# ratio.  BENCH_REDIS_AOF=yes runs the server with appendonly yes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REV=${1:-HEAD}
CALLS=${BENCH_REDIS_CALLS:-4000}
AOF=${BENCH_REDIS_AOF:-no}

for tool in valgrind callgrind_control redis-server redis-cli redis-benchmark
do
    command -v "$tool" > /dev/null \
        || { echo "$0: $tool not found (make bench-deps)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/sd-redis-instr.XXXXXX)
VPID=
cleanup() {
    [ -n "$VPID" ] && kill "$VPID" 2> /dev/null && wait "$VPID" 2> /dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# a free loopback port, as the tests pick theirs
PORT=$(perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                 LocalPort => 0)->sockport')

# $1 a checkout (its redis/ and script table), $2 script: the source as the
# module of that checkout loads it
source_of() {
    perl "$ROOT/util/script-source.pl" "$1" "$2"
}

mkdir -p "$TMP/rev"
git -C "$ROOT" archive "$REV" redis \
    ngx_http_supportdesk_module/ngx_http_supportdesk_script.c \
    | tar -x -C "$TMP/rev"

valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' \
        --appendonly "$AOF" --dir "$TMP" > "$TMP/valgrind.log" 2>&1 &
VPID=$!
for _ in $(seq 100); do
    redis-cli -p "$PORT" ping > /dev/null 2>&1 && break
    sleep 0.2
done
redis-cli -p "$PORT" ping > /dev/null \
    || { cat "$TMP/valgrind.log" >&2; echo "$0: redis-server did not start" >&2; exit 1; }

rcli() {
    redis-cli -p "$PORT" "$@"
}

# the feed's and idempotency's leading keys and arguments (lib.lua), no key
FEED_KEYS="sd:{b}:events sd:{b}:eventseq sd:{b}:idem:"
FEED_ARGS=(1764000000 "" 86400 100000 86400)

# $1 case, $2 sha, $3 tag (unique per call batch): one redis-benchmark run of
# $4 calls
call_case() {
    local c=$1 sha=$2 tag=$3 n=$4
    local bench=(redis-benchmark -p "$PORT" -n "$n" -r 100000000 -P 16 -c 1 -q)
    case $c in
    upsert-update)
        "${bench[@]}" EVALSHA "$sha" 8 $FEED_KEYS sd:{b}:c:u1 sd:{b}:emails \
            sd:{b}:order sd:{b}:seq sd:{b}:idem: "${FEED_ARGS[@]}" u1 "" "" "" \
            p "+1 __rand_int__" ;;
    upsert-create)
        "${bench[@]}" EVALSHA "$sha" 8 $FEED_KEYS "sd:{b}:c:${tag}__rand_int__" \
            sd:{b}:emails sd:{b}:order sd:{b}:seq sd:{b}:idem: \
            "${FEED_ARGS[@]}" "${tag}__rand_int__" "" "" "" \
            e "${tag}__rand_int__@example.com" n "Jane Doe" p "+1 555 0100" \
            a "https://example.com/avatars/jane.png" \
            m '{"plan":"pro","seats":5}' ;;
    note-create)
        "${bench[@]}" EVALSHA "$sha" 7 $FEED_KEYS sd:{b}:c:u1 \
            sd:{b}:notes:u1 sd:{b}:notez:u1 sd:{b}:noteseq \
            "${FEED_ARGS[@]}" u1 "Called about the invoice" ;;
    notifications)
        # a change each call: the setting flips, so one connection's
        # pipeline of n calls with alternating values (redis-cli --pipe)
        perl -e '
            my ($sha, $n, @fixed) = @ARGV;
            for my $i (1 .. $n) {
                my @a = ("EVALSHA", $sha, 5, @fixed, "u1", "email", $i % 2);
                print "*", scalar @a, "\r\n";
                print "\$", length $_, "\r\n$_\r\n" for @a;
            }' "$sha" "$n" $FEED_KEYS sd:{b}:c:u1 sd:{b}:notif:u1 \
            "${FEED_ARGS[@]}" | redis-cli -p "$PORT" --pipe ;;
    list)
        "${bench[@]}" EVALSHA "$sha" 1 sd:{b}:order sd:{b}: 0 20 1000 0 \
            "" "" ;;
    esac > /dev/null
}

script_of() {
    case $1 in
    upsert-*) echo upsert ;;
    note-create) echo note_add ;;
    notifications) echo notifications ;;
    list) echo list ;;
    esac
}

# 39 more seed-example customers beside u1, and a check that the list script
# ($1) answers a page rather than an error
seed_page() {
    local up i
    up=$(rcli script load "$(source_of "$ROOT" upsert)")
    for i in $(seq 2 40); do
        rcli evalsha "$up" 8 $FEED_KEYS "sd:{b}:c:u$i" sd:{b}:emails \
            sd:{b}:order sd:{b}:seq sd:{b}:idem: "${FEED_ARGS[@]}" "u$i" \
            "" "" "" e "u$i@example.com" n "Jane Doe" p "+1 555 0100" \
            a "https://example.com/avatars/jane.png" \
            m '{"plan":"pro","seats":5}' > /dev/null
    done
    rcli evalsha "$1" 1 sd:{b}:order sd:{b}: 0 20 1000 0 "" "" \
        | grep -q "u20" \
        || { echo "$0: list: no page of 20 from the list script" >&2; exit 1; }
}

dump_ir() {
    local label=$1 f
    callgrind_control --dump="$label" "$VPID" > /dev/null 2>&1
    f=$(grep -l -x "desc: Trigger: dump $label" "$TMP"/cg.out* | head -1)
    awk '/^(summary|totals):/ { print $2; exit }' "$f"
}

printf '| case | %s | checkout | ratio |\n|---|--:|--:|--:|\n' "$REV"
for c in upsert-update upsert-create note-create notifications list; do
    s=$(script_of "$c")
    row=()
    for dir in "$TMP/rev" "$ROOT"; do
        sha=$(rcli script load "$(source_of "$dir" "$s")")
        rcli flushall > /dev/null
        # the one customer the updates, notes and settings are about
        rcli evalsha "$(rcli script load "$(source_of "$ROOT" upsert)")" \
            8 $FEED_KEYS sd:{b}:c:u1 sd:{b}:emails sd:{b}:order sd:{b}:seq \
            sd:{b}:idem: "${FEED_ARGS[@]}" u1 "" "" "" e jane@example.com \
            n "Jane Doe" > /dev/null
        if [ "$c" = list ]; then
            seed_page "$sha"
        fi
        call_case "$c" "$sha" "w$RANDOM" 2000
        callgrind_control --zero "$VPID" > /dev/null 2>&1
        label="$c-${#row[@]}"
        call_case "$c" "$sha" "m$RANDOM" "$CALLS"
        ir=$(dump_ir "$label")
        events=$(rcli xlen sd:{b}:events)
        [ "$c" = list ] || [ "$events" -ge "$CALLS" ] \
            || { echo "$0: $c: only $events events for $CALLS calls" >&2; exit 1; }
        row+=("$((ir / CALLS))")
    done
    printf '| %s | %s | %s | %s |\n' "$c" "${row[0]}" "${row[1]}" \
        "$(awk -v a="${row[0]}" -v b="${row[1]}" 'BEGIN { printf "%.3f", b / a }')"
done
