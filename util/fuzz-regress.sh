#!/usr/bin/env bash
# util/fuzz-regress.sh: `make fuzz-regress` once the fuzzers are built:
# replay, without fuzzing, every seed input (t/fuzz/corpus/<t>/) and every
# crash input ever kept (t/fuzz/regressions/<t>/) through FUZZ_DIR/fuzz_<t>,
# for each of FUZZ_TARGETS.  Seconds; fails if any input fails (log:
# FUZZ_DIR/<t>.regress.log).
#
# Environment (make variables, passed explicitly by t/quality.mk):
#   FUZZ_DIR, FUZZ_TARGETS
set -euo pipefail
# shellcheck source=util/lib.sh
. "$(dirname "$0")/lib.sh"
need FUZZ_DIR FUZZ_TARGETS

fail=0
for t in $FUZZ_TARGETS; do
    files=$(find "t/fuzz/corpus/$t" "t/fuzz/regressions/$t" -type f 2>/dev/null | sort || true)
    [ -n "$files" ] || continue
    n=$(echo "$files" | wc -l)
    # shellcheck disable=SC2086 # one file name a line, no blanks in them
    if "$FUZZ_DIR/fuzz_$t" $files > "$FUZZ_DIR/$t.regress.log" 2>&1; then
        echo "fuzz-regress: $t: $n inputs ok"
    else
        echo "fuzz-regress: $t: FAILED (log: build/fuzz/$t.regress.log)"
        grep -aE -B2 -A20 '==ERROR|fuzz: assertion|runtime error|deadly signal' "$FUZZ_DIR/$t.regress.log" | head -n 40 || true
        fail=1
    fi
done
exit $fail
