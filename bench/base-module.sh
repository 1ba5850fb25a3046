#!/usr/bin/env bash
# bench/base-module.sh COMMIT OUT: build the module as it was at COMMIT and
# install it as OUT (make bench-feed: the module without the change feed, to
# compare with).
#
# COMMIT is checked out in a temporary git worktree, build/base-src.<pid>
# (next to OUT's directory), whose own `make build` (its Makefile and
# util/*.sh: configure a private nginx tree, make modules, nginx -t loads the
# .so) builds it in that worktree's build/; the .so is copied to OUT and the
# worktree removed again (git worktree remove), also on failure.  OUT.commit
# records the full commit id: an OUT built from the same commit is reused.
#
# Environment: MAKE (the make to run, default make).
set -euo pipefail

if [ $# != 2 ]; then
    echo "usage: $0 COMMIT OUT" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
out=$2
commit=$(git -C "$root" rev-parse --verify "$1^{commit}")
module=ngx_http_supportdesk_module

if [ -f "$out" ] && [ "$(cat "$out.commit" 2>/dev/null)" = "$commit" ]; then
    echo "bench: base module $out (commit ${commit:0:7}) is up to date"
    exit 0
fi

mkdir -p "$(dirname "$out")"
src=$(cd "$(dirname "$out")" && pwd)/base-src.$$
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -d "$src" ]; then
        git -C "$root" worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
        git -C "$root" worktree prune
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "bench: building the base module of commit ${commit:0:7} in $src"
git -C "$root" worktree add --quiet --detach "$src" "$commit" > /dev/null
${MAKE:-make} -C "$src" --no-print-directory build > "$src/build.log" 2>&1 || {
    tail -n 40 "$src/build.log" >&2
    echo "bench: building the base module of ${commit:0:7} failed" >&2
    exit 1
}
install -m 0755 "$src/build/$module.so" "$out.tmp"
mv -f "$out.tmp" "$out"
echo "$commit" > "$out.commit"
echo "bench: base module $out (commit ${commit:0:7})"
