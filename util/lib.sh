# shellcheck shell=bash
# util/lib.sh: shell helpers shared by the util/*.sh scripts (bash; sourced,
# not run).  Takes nothing; defines functions only:
#   need VAR...                 fail unless every VAR is set and not empty
#   nginx_dev_version DIST      the nginx-dev version (dpkg), else a hash of
#                               DIST's nginx.h and conf_flags; "none" without
#   alive PIDFILE NAME          the pid in PIDFILE is a running NAME process
#   stop_pidfile PIDFILE NAME SIGNAL
#   port_open PORT              something accepts connections on 127.0.0.1:PORT

# need VAR...: the make variables a script takes from its environment
need() {
    local v
    for v in "$@"; do
        if [ -z "${!v:-}" ]; then
            echo "${0##*/}: $v is not set (run through make)" >&2
            exit 2
        fi
    done
}

nginx_dev_version() {
    local ver
    ver=$(dpkg-query -W -f='${Version}' nginx-dev 2>/dev/null || true)
    if [ -z "$ver" ] && [ -f "$1/src/core/nginx.h" ]; then
        ver=$(cat "$1/src/core/nginx.h" "$1/conf_flags" 2>/dev/null \
              | sha256sum | cut -c1-16)
    fi
    echo "${ver:-none}"
}

alive() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# stop_pidfile PIDFILE NAME SIGNAL: signal, wait up to 15 s, then SIGKILL;
# returns 1 when there was nothing to stop
stop_pidfile() {
    local pid
    if ! alive "$1" "$2"; then
        rm -f "$1"
        return 1
    fi
    pid=$(cat "$1")
    kill -"$3" "$pid"
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$2 (pid $pid) did not exit in 15 s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
