#!/usr/bin/env bash
# util/test-asan.sh: `make test-asan` once the ASan+UBSan build exists: prove
# ASAN_TESTS against ASAN_SO through the wrapper ASAN_NGINX, every test
# environment kept (SD_KEEP=1 in a private TMPDIR), then search the
# sanitizer reports and every kept error log.  Fails on a failed test, any
# ASan/LSan/UBSan report or a crash; the evidence stays (the environments'
# directory is named, reports in ASAN_REPORTS).
#
# Environment (make variables, passed explicitly by t/quality.mk):
#   ASAN_SO, ASAN_NGINX, ASAN_REPORTS
#   ASAN_TESTS    the test files or directories (t/)
#   Q_PROVE_ARGS  extra prove options (may be empty)
set -euo pipefail
# shellcheck source=util/lib.sh
. "$(dirname "$0")/lib.sh"
need ASAN_SO ASAN_NGINX ASAN_REPORTS ASAN_TESTS

# sanitizer_scan DIR: print every sanitizer report and every crash of a run
# whose test environments are in DIR; returns 1 if there is any
sanitizer_scan() {
    local found=0 f
    local pat='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|ERROR: .*Sanitizer|exited on signal (?!9\b)'
    for f in "$ASAN_REPORTS"/*; do
        [ -f "$f" ] || continue
        echo "=== sanitizer report $f"; cat "$f"; found=1
    done
    for f in "$1"/*/error.log "$1"/*/nginx.out "$1"/*/t*.err; do
        [ -f "$f" ] || continue
        # a worker that died on a signal, but SIGKILL: only tests send that
        if grep -aP "$pat" "$f" >/dev/null; then
            echo "=== $f"
            grep -aP -B2 -A30 "$pat" "$f" | head -n 200
            found=1
        fi
    done
    return $found
}

rm -rf "$ASAN_REPORTS"
mkdir -p "$ASAN_REPORTS"
chmod 1777 "$ASAN_REPORTS"
run=$(mktemp -d /tmp/sd-asan.XXXXXX)
chmod 0755 "$run"
echo "test-asan: SD_MODULE=$ASAN_SO SD_NGINX=$ASAN_NGINX, environments kept in $run"
rc=0
# shellcheck disable=SC2086 # word lists
TMPDIR=$run SD_KEEP=1 SD_MODULE=$ASAN_SO SD_NGINX=$ASAN_NGINX \
    prove -I t/lib --timer ${Q_PROVE_ARGS:-} $ASAN_TESTS || rc=$?
envs=$(find "$run" -mindepth 1 -maxdepth 1 -type d | wc -l)
scan=0
sanitizer_scan "$run" || scan=1
reports=$(find "$ASAN_REPORTS" -type f | wc -l)
echo "test-asan: prove exit $rc, $envs nginx environments, $reports sanitizer report file(s)"
if [ $rc != 0 ] || [ $scan != 0 ]; then
    echo "test-asan: FAILED (environments kept in $run, reports in $ASAN_REPORTS)" >&2
    exit 1
fi
rm -rf "$run"
echo "test-asan: PASS: no ASan/UBSan/LSan report, no crash"
