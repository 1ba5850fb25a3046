#!/usr/bin/env bash
# util/deb-build.sh SRC OUT: `make deb`.  Builds the Debian package
# libnginx-mod-http-supportdesk from the checkout SRC (its debian/
# directory) into OUT (build/deb): the files git knows of (tracked, and new
# ones not ignored) are copied to OUT/src, dpkg-buildpackage -b runs there
# (so the package is built from the sources, never from build/), its
# outputs (.deb, .buildinfo, .changes) land in OUT; then lintian on the
# .changes, failing on any error (warnings are printed; README.md, "Install",
# explains each).  Prints the path of the .deb last.
set -euo pipefail

src=${1:?usage: deb-build.sh SRC OUT}
out=${2:?usage: deb-build.sh SRC OUT}

rm -rf "$out"
mkdir -p "$out/src"
(cd "$src" && git ls-files -z --cached --others --exclude-standard) \
    | (cd "$src" && xargs -0 cp --parents -a -t "$out/src" --) 2>/dev/null \
    || { echo "deb: cannot copy the checkout (a git checkout is needed)" >&2; exit 1; }
# files deleted in the work tree but still in the index
find "$out/src" -xtype l -delete

echo "deb: dpkg-buildpackage in $out/src (log: $out/build.log)"
if ! (cd "$out/src" && dpkg-buildpackage -us -uc -b) > "$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log" >&2
    echo "deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
    exit 1
fi
changes=$(ls "$out"/*.changes)
deb=$(ls "$out"/libnginx-mod-http-supportdesk_*.deb)

echo "deb: lintian $changes"
lintian --fail-on error --display-info --tag-display-limit 0 "$changes" \
    | tee "$out/lintian.txt"
echo "deb: $(grep -c '^E:' "$out/lintian.txt" || true) errors," \
     "$(grep -c '^W:' "$out/lintian.txt" || true) warnings," \
     "$(grep -c '^I:' "$out/lintian.txt" || true) infos (README.md, Install)"
dpkg-deb --contents "$deb" > "$out/contents.txt"
echo "$deb"
