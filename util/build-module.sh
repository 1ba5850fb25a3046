#!/usr/bin/env bash
# util/build-module.sh TREE SO NGINX [MAKE_ARG...]: `make -f objs/Makefile
# modules` in the configured nginx tree TREE (MAKE_ARGs added, e.g. CC=gcc),
# then install the module it built (objs/ named like SO) as SO, once NGINX
# has loaded it.
#
# The load check: `NGINX -t` with a configuration that only does
# load_module; dlopen resolves every symbol now, not at the first request.
# Only then does the new .so replace SO, with install + mv, as a new inode,
# never overwriting the file in place, which a running nginx has mapped.
#
# Environment: MAKE (the make to run, default make); MAKE_LOG (optional: the
# make output goes to that file, its tail to stderr on failure).
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 TREE SO NGINX [MAKE_ARG...]" >&2
    exit 2
fi
tree=$1
so=$2
nginx=$3
shift 3
module=$(basename "$so")
check=$(dirname "$so")/loadcheck

# Linked again every time: a .so left from an earlier configure (the addon
# renamed, another first module) must not be installed as this build's.
rm -f "$tree/objs/$module"

if [ -n "${MAKE_LOG:-}" ]; then
    if ! ${MAKE:-make} -C "$tree" -f objs/Makefile modules "$@" \
            > "$MAKE_LOG" 2>&1; then
        tail -n 40 "$MAKE_LOG" >&2
        echo "build: make modules failed (log: $MAKE_LOG)" >&2
        exit 1
    fi
else
    ${MAKE:-make} -C "$tree" -f objs/Makefile modules "$@"
fi

install -m 0755 "$tree/objs/$module" "$so.tmp"
mkdir -p "$check"
printf 'pid %s/nginx.pid;\nerror_log stderr;\nload_module %s;\nevents {}\n' \
    "$check" "$so.tmp" > "$check/nginx.conf"
if ! out=$("$nginx" -p "$check/" -c "$check/nginx.conf" -e stderr -t 2>&1)
then
    echo "$out" >&2
    rm -f "$so.tmp"
    echo "build: $nginx cannot load the module" >&2
    exit 1
fi
mv -f "$so.tmp" "$so"
echo "build: $so"
