#!/usr/bin/env bash
# util/node-deps.sh SRC DIR: the npm packages of SRC/package.json, exactly as
# SRC/package-lock.json pins them, installed in DIR/node_modules with `npm
# ci` (never a global install).  Used by `make openapi-deps` (SRC is
# t/openapi, DIR build/node).  Does nothing when DIR holds an install made
# from the same lock file.  Node.js and npm themselves come from the machine:
# util/deps.sh installs Debian's nodejs and npm only when the commands are
# missing (a machine with another Node.js, NodeSource's say, keeps it: its
# nodejs package conflicts with Debian's npm).
set -euo pipefail

src=${1:?usage: node-deps.sh SRC DIR}
dir=${2:?usage: node-deps.sh SRC DIR}

if [ -d "$dir/node_modules" ] && cmp -s "$src/package-lock.json" "$dir/.installed.lock" \
   && cmp -s "$src/package.json" "$dir/package.json"; then
    exit 0
fi

echo "node-deps: npm ci in $dir ($(node --version), npm $(npm --version))"
mkdir -p "$dir"
rm -f "$dir/.installed.lock"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
# --ignore-scripts: nothing these tools need runs at install time (the one
# install script in the tree, core-js's, prints a banner)
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
cp "$src/package-lock.json" "$dir/.installed.lock"
