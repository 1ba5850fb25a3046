#!/usr/bin/env bash
# util/configure.sh TREE LOG [EXTRA_CFLAGS] [EXTRA_LDFLAGS]: configure the
# nginx source tree TREE (copied from NGINX_DIST) with the packaged nginx's
# own flags plus --add-dynamic-module=MODULE_DIR; configure's output goes
# to LOG.  The one configure step of the normal build (build/nginx-src) and
# of the sanitizer build (build/asan/nginx-src, with the sanitizer flags as
# EXTRA_CFLAGS and EXTRA_LDFLAGS).  make decides when it runs (the rules of
# objs/Makefile in Makefile and t/quality.mk); this script only does it.
#
# Environment (make variables, passed explicitly by the Makefile):
#   NGINX_DIST   nginx sources shipped by nginx-dev (configure, conf_flags)
#   MODULE_DIR   the module checkout (its config and config.make)
#   NGX_CC_OPT   --with-cc-opt, NGX_LD_OPT --with-ld-opt
#   MOD_CFLAGS   the module's own warnings, appended to objs/Makefile
#
# TREE is copied afresh when it is missing or comes from another nginx-dev
# version (TREE.version holds the version it was copied from).
set -euo pipefail
# shellcheck source=util/lib.sh
. "$(dirname "$0")/lib.sh"
need NGINX_DIST MODULE_DIR NGX_CC_OPT NGX_LD_OPT MOD_CFLAGS

if [ $# -lt 2 ] || [ $# -gt 4 ]; then
    echo "usage: $0 TREE LOG [EXTRA_CFLAGS] [EXTRA_LDFLAGS]" >&2
    exit 2
fi
tree=$1
log=$2
extra_cflags=${3:-}
extra_ldflags=${4:-}
name=${tree#"$PWD/"}

if [ ! -f "$NGINX_DIST/configure" ] || [ ! -f "$NGINX_DIST/conf_flags" ]; then
    echo "$NGINX_DIST not found: install nginx-dev first (make deps)" >&2
    exit 1
fi
ver=$(nginx_dev_version "$NGINX_DIST")
if [ ! -f "$tree/configure" ] || [ "$(cat "$tree.version" 2>/dev/null)" != "$ver" ]
then
    echo "build: copying $NGINX_DIST (nginx-dev $ver) to $name"
    rm -rf "$tree" "$tree.version"
    mkdir -p "$(dirname "$tree")"
    cp -a "$NGINX_DIST" "$tree"
    echo "$ver" > "$tree.version"
fi

cd "$tree"
rm -f objs/Makefile
# shellcheck disable=SC1091 # Debian's: NGX_CONF_FLAGS, the packaged nginx's
source ./conf_flags
echo "build: configuring $name (nginx-dev $ver) + $MODULE_DIR (log: ${log#"$OLDPWD/"})"
if ! ./configure "${NGX_CONF_FLAGS[@]}" \
        --add-dynamic-module="$MODULE_DIR" \
        --with-cc-opt="$NGX_CC_OPT" \
        --with-ld-opt="$NGX_LD_OPT" > "$log" 2>&1
then
    cat "$log" >&2
    rm -f objs/Makefile
    echo "build: nginx ./configure failed (log: $log)" >&2
    exit 1
fi

# The module's own warnings (MOD_CFLAGS), and for the sanitizer build its
# -fsanitize flags, go to objs/Makefile's CFLAGS and LINK only, after
# configure.  Not in --with-cc-opt/--with-ld-opt: configure compiles, links
# and *runs* its feature tests with those, and under -Wextra -Werror some of
# them fail (pwrite(), strerrordesc_np() "not found"), as does an
# instrumented test program that leaks or trips UBSan; ngx_auto_config.h
# would then no longer describe the installed nginx, and the module's
# structs would not match it.  `make modules` compiles only the module's
# sources, so these flags reach nothing else.
# (objs/Makefile has "CFLAGS = ..." but "LINK =<tab>$(CC)".)
sed -i -e "s/^CFLAGS = .*/& $MOD_CFLAGS${extra_cflags:+ $extra_cflags}/" \
    objs/Makefile
if [ -n "$extra_ldflags" ]; then
    sed -i -e "s/^LINK =[[:space:]].*/& $extra_ldflags/" objs/Makefile
fi
if ! grep -q -e "^CFLAGS = .* $MOD_CFLAGS" objs/Makefile \
   || ! grep -q -e "^LINK =.*$extra_ldflags\$" objs/Makefile; then
    echo "build: objs/Makefile: no CFLAGS or LINK line to extend" >&2
    rm -f objs/Makefile
    exit 1
fi
grep -a -E '^ \+ supportdesk|^   \+ ' "$log" || true
