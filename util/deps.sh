#!/usr/bin/env bash
# util/deps.sh: install the Debian packages that are missing (apt-get, through
# sudo when not root).  Used by `make deps`, `make quality-deps` and
# `make bench-deps`.
#
# Arguments: what to check, one word each:
#   PACKAGE          installed unless its dpkg status is "install ok installed"
#   COMMAND:PACKAGE  installed only when COMMAND is not on the PATH
# Prints "deps: all required Debian packages are installed" when nothing is
# missing and a package list was checked (quiet for COMMAND:PACKAGE lists).
set -euo pipefail

missing=()
packages=0
for w in "$@"; do
    case $w in
        *:*)
            command -v "${w%%:*}" >/dev/null 2>&1 || missing+=("${w#*:}") ;;
        *)
            packages=1
            # not `dpkg -s | grep -q`: grep quits at the match, dpkg may die
            # of SIGPIPE, and pipefail then calls an installed package missing
            [ "$(dpkg-query -W -f='${Status}' "$w" 2>/dev/null)" = \
              "install ok installed" ] || missing+=("$w") ;;
    esac
done

if [ ${#missing[@]} = 0 ]; then
    [ $packages = 0 ] || echo "deps: all required Debian packages are installed"
    exit 0
fi
# one tool may come with another's package (valgrind: callgrind_control)
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')

sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
echo "deps: installing ${missing[*]}"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
