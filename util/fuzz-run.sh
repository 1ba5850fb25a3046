#!/usr/bin/env bash
# util/fuzz-run.sh: `make fuzz` once the fuzzers are built: run each of
# FUZZ_TARGETS for FUZZ_TIME seconds from its seed corpus t/fuzz/corpus/<t>/
# (new inputs to FUZZ_DIR/corpus/<t>/, crashes to FUZZ_DIR/crashes/<t>/, the
# log to FUZZ_DIR/<t>.log), with t/fuzz/<t>.dict when there is one.  Prints
# a line per target (also in FUZZ_DIR/summary.txt); fails if any crashed.
#
# Environment (make variables, passed explicitly by t/quality.mk):
#   FUZZ_DIR, FUZZ_TARGETS, FUZZ_TIME
#   FUZZ_ARGS     extra libFuzzer options (may be empty)
set -euo pipefail
# shellcheck source=util/lib.sh
. "$(dirname "$0")/lib.sh"
need FUZZ_DIR FUZZ_TARGETS FUZZ_TIME

fail=0
summary=
for t in $FUZZ_TARGETS; do
    mkdir -p "$FUZZ_DIR/corpus/$t" "$FUZZ_DIR/crashes/$t" "t/fuzz/corpus/$t"
    dict=; [ -f "t/fuzz/$t.dict" ] && dict=-dict=t/fuzz/$t.dict
    echo "fuzz: $t for ${FUZZ_TIME}s (log: build/fuzz/$t.log)"
    rc=0
    # shellcheck disable=SC2086 # optional words
    "$FUZZ_DIR/fuzz_$t" -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/crashes/$t/" $dict ${FUZZ_ARGS:-} \
        "$FUZZ_DIR/corpus/$t" "t/fuzz/corpus/$t" > "$FUZZ_DIR/$t.log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$FUZZ_DIR/$t.log" | tail -n 1)
    cov=$(grep -aoE 'cov: [0-9]+' "$FUZZ_DIR/$t.log" | tail -n 1 | sed 's/cov: //' || true)
    corpus=$(ls "$FUZZ_DIR/corpus/$t" | wc -l)
    crashes=$(ls "$FUZZ_DIR/crashes/$t" | wc -l)
    line="$t: ${execs:-?} executions, coverage ${cov:-?} edges, corpus $corpus, exit $rc, $crashes crash file(s)"
    summary="$summary$line"$'\n'
    echo "fuzz: $line"
    if [ $rc != 0 ]; then
        fail=1
        grep -aE -A25 '==ERROR|fuzz: assertion|runtime error|deadly signal' "$FUZZ_DIR/$t.log" | head -n 40 || true
        echo "fuzz: $t: reproduce with build/fuzz/fuzz_$t <crash file>; keep it in t/fuzz/regressions/$t/"
    fi
done
printf '%s' "$summary" > "$FUZZ_DIR/summary.txt"
echo "fuzz: summary (build/fuzz/summary.txt):"; cat "$FUZZ_DIR/summary.txt"
exit $fail
