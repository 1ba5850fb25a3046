#!/usr/bin/env bash
# util/fuzz-build.sh: build FUZZ_DIR/fuzz_<target> for every target of
# FUZZ_TARGETS (`make fuzz-build`): the libFuzzer harness t/fuzz/fuzz_<target>.c,
# the module's sources that target needs (the table below), t/fuzz/ngx_shim.c
# and a generated stub for every other nginx symbol they reference.
#
# Environment (make variables, passed explicitly by t/quality.mk):
#   FUZZ_CC, FUZZ_CFLAGS, FUZZ_INCS   the compiler, its flags, -I options
#   FUZZ_DIR      build/fuzz             FUZZ_TARGETS  the targets to build
#   MODULE_SRC    the directory of the module's .c files
set -euo pipefail

# --- fuzz target -> the module's sources it links ---------------------------
# One line per target: NAME stands for $MODULE_SRC/ngx_http_supportdesk_NAME.c.
# When a module source is renamed or split, this is the place to edit.
srcs_for() {
    case $1 in
        payload|external_id|fields) echo validate ;;
        router) echo router ;;
        reply) echo reply record envelope validate ;;
        error) echo envelope validate ;;
        query) echo query validate ;;
        msgpack) echo msgpack ;;
        *) echo "fuzz: unknown target $1" >&2; exit 1 ;;
    esac
}
# -----------------------------------------------------------------------------

# shellcheck source=util/lib.sh
. "$(dirname "$0")/lib.sh"
need FUZZ_CC FUZZ_CFLAGS FUZZ_INCS FUZZ_DIR FUZZ_TARGETS MODULE_SRC

command -v "$FUZZ_CC" >/dev/null || { echo "fuzz: $FUZZ_CC not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }

# shellcheck disable=SC2086 # FUZZ_CFLAGS and FUZZ_INCS are word lists
cc() { "$FUZZ_CC" $FUZZ_CFLAGS $FUZZ_INCS "$@"; }

for t in $FUZZ_TARGETS; do
    srcs=$(srcs_for "$t")
    o=$FUZZ_DIR/obj/$t
    rm -rf "$o"; mkdir -p "$o"
    for s in $srcs; do
        cc -fsanitize=fuzzer-no-link \
            -c "$MODULE_SRC/ngx_http_supportdesk_$s.c" -o "$o/$s.o"
    done
    cc -fsanitize=fuzzer-no-link -c "t/fuzz/fuzz_$t.c" -o "$o/harness.o"
    cc -c t/fuzz/ngx_shim.c -o "$o/shim.o"
    # every nginx symbol nobody defines: a zero-filled, non-executable stub
    nm -u "$o"/*.o | awk '$1 == "U" { print $2 }' | { grep '^ngx_' || true; } \
        | sort -u > "$o/undef"
    nm --defined-only "$o"/*.o | awk '{ print $NF }' | sort -u > "$o/def"
    comm -23 "$o/undef" "$o/def" \
        | awk '{ printf "char %s[4096] __attribute__((aligned(64)));\n", $1 }' \
        > "$o/stubs.c"
    "$FUZZ_CC" -c "$o/stubs.c" -o "$o/stubs.o"
    # shellcheck disable=SC2086
    "$FUZZ_CC" $FUZZ_CFLAGS -fsanitize=fuzzer "$o"/*.o -o "$FUZZ_DIR/fuzz_$t" \
        -ljansson -lhiredis -lcrypto
    echo "fuzz: built build/fuzz/fuzz_$t ($(wc -l < "$o/stubs.c") nginx symbols stubbed)"
done
