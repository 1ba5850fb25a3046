#!/usr/bin/env bash
# util/test-deb.sh DEB: `make test-deb` (root; .ci/run calls it after make
# test).  Installs the package DEB (build/deb/libnginx-mod-http-supportdesk_*.deb)
# with dpkg -i, checks that its snippet is enabled and that `nginx -t` of
# the system configuration loads the module, then starts a private
# redis-server and nginx on free loopback ports with the packaged module
# (the enabled snippet) and the API location of the packaged example
# configuration, creates a key with the packaged sd-key, serves
# authenticated requests, runs the packaged sd-check, stops both, and
# removes the package (dpkg -r, then dpkg -P: -r alone leaves dh_nginx's
# modules-enabled/50-mod-http-supportdesk.conf.removed link behind).  The
# machine is then as it was: the listing of every path the package touches
# is compared with the one taken before.  Prints "test-deb: N passed, M
# failed"; exit status 0 only when nothing failed.
#
# Refuses to run (exit 2) when not root, when the package is installed
# already, or when a system nginx is running (installing the package
# triggers nginx-reload, which would load the module into it).
set -euo pipefail

deb=${1:?usage: test-deb.sh DEB}
pkg=libnginx-mod-http-supportdesk
enabled=/etc/nginx/modules-enabled/50-mod-http-supportdesk.conf
example=/usr/share/doc/$pkg/examples/supportdesk.conf

[ "$(id -u)" = 0 ] || { echo "test-deb: needs root (dpkg -i)" >&2; exit 2; }
[ -f "$deb" ] || { echo "test-deb: $deb not found (make deb)" >&2; exit 2; }
if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "" ] \
   && [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "unknown ok not-installed" ]; then
    echo "test-deb: $pkg is installed already: this test would not leave the machine as it was" >&2
    exit 2
fi
if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    echo "test-deb: a system nginx is running (/run/nginx.pid): installing the package would reload it" >&2
    exit 2
fi

passed=0
failed=0
ok()   { passed=$((passed + 1)); echo "ok $((passed + failed)) - $*"; }
fail() { failed=$((failed + 1)); echo "not ok $((passed + failed)) - $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

# what the package may touch, listed before and after
state() {
    # (find fails on the paths that do not exist: they are not listed)
    { find /etc/nginx /usr/lib/nginx/modules /usr/share/nginx/modules-available \
           /usr/share/doc/$pkg /usr/bin/sd-key /usr/bin/sd-check \
           -printf '%p %y %l\n' 2>/dev/null || true; } | sort
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null || true
}

nginx_pid=
redis_pid=
installed=0
tmp=

cleanup() {
    local rc=$?
    [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null && wait_gone "$nginx_pid"
    [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait_gone "$redis_pid"
    if [ "$installed" = 1 ]; then
        dpkg -r "$pkg" > "$tmp/dpkg-r.log" 2>&1 || cat "$tmp/dpkg-r.log" >&2
        dpkg -P "$pkg" > "$tmp/dpkg-p.log" 2>&1 || cat "$tmp/dpkg-p.log" >&2
    fi
    [ -n "$tmp" ] && rm -rf "$tmp"
    exit "$rc"
}
wait_gone() {
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

tmp=$(mktemp -d /tmp/sd-test-deb-XXXXXX)
chmod 755 "$tmp"    # nginx's workers (nobody) read their temp paths
state > "$tmp/state.before"


# below Linux's ephemeral range (32768-60999): a port an outgoing connection
# holds does not answer a connect, yet makes nginx's bind() fail
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    echo "test-deb: no free port" >&2
    exit 1
}
wait_port() {
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

# ---------------------------------------------------------------- install
echo "test-deb: dpkg -i $deb"
if dpkg -i "$deb" > "$tmp/dpkg-i.log" 2>&1; then
    installed=1
    ok "dpkg -i installs $pkg"
else
    installed=1    # half-installed: cleanup removes it
    cat "$tmp/dpkg-i.log" >&2
    fail "dpkg -i installs $pkg"
    exit 1
fi
check "the module is in /usr/lib/nginx/modules" test -f /usr/lib/nginx/modules/ngx_http_supportdesk_module.so
check "the snippet loads it" grep -qx 'load_module modules/ngx_http_supportdesk_module.so;' \
    /usr/share/nginx/modules-available/mod-http-supportdesk.conf
# dh_nginx's postinst enables the snippet on a fresh install
check "the snippet is enabled ($enabled)" \
    test "$(readlink "$enabled")" = /usr/share/nginx/modules-available/mod-http-supportdesk.conf
check "sd-key and sd-check are on the PATH" test -x /usr/bin/sd-key -a -x /usr/bin/sd-check
if nginx -t > "$tmp/nginx-t.log" 2>&1 && nginx -T 2>/dev/null | grep -q 'ngx_http_supportdesk_module.so'; then
    ok "nginx -t of the system configuration loads the module"
else
    cat "$tmp/nginx-t.log" >&2
    fail "nginx -t of the system configuration loads the module"
fi

# ---------------------------------------------------------------- serve
port=$(free_port)
rport=$(free_port)
while [ "$rport" = "$port" ]; do rport=$(free_port); done

# the packaged example, on our ports and paths; each line must be there once
conf=$tmp/supportdesk.conf
if [ -f "$example" ]; then cp "$example" "$conf"; else zcat "$example.gz" > "$conf"; fi
subst() {
    if [ "$(grep -cxF -- "$1" "$conf")" != 1 ]; then
        echo "test-deb: the example has no line '$1' (update util/test-deb.sh)" >&2
        return 1
    fi
    sed -i "s|^$(printf '%s' "$1" | sed 's/[][\.*^$|]/\\&/g')\$|$2|" "$conf"
}
subst '    listen 80;' "    listen 127.0.0.1:$port;"
subst 'supportdesk_redis 127.0.0.1:6379;        # or unix:/run/redis/redis.sock' \
      "supportdesk_redis 127.0.0.1:$rport;"
subst '    access_log /var/log/nginx/supportdesk.log supportdesk;' \
      "    access_log $tmp/supportdesk.log supportdesk;"

cat > "$tmp/nginx.conf" <<EOF
# the packaged module, through the snippet the package enabled
include $enabled;
daemon off;
master_process on;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log info;
events { worker_connections 64; }
http {
    client_body_temp_path $tmp/client_body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    access_log $tmp/access.log;
    include $conf;
}
EOF

redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$tmp" --daemonize no --protected-mode no > "$tmp/redis.log" 2>&1 &
redis_pid=$!
wait_port "$rport" || { cat "$tmp/redis.log" >&2; fail "redis-server starts"; exit 1; }

if ! nginx -t -c "$tmp/nginx.conf" -e "$tmp/error.log" > "$tmp/t.log" 2>&1; then
    cat "$tmp/t.log" >&2
    fail "nginx -t of the example configuration with the packaged module"
    exit 1
fi
ok "nginx -t of the example configuration with the packaged module"
nginx -c "$tmp/nginx.conf" -e "$tmp/error.log" > "$tmp/nginx.out" 2>&1 &
nginx_pid=$!
if ! wait_port "$port"; then
    cat "$tmp/nginx.out" "$tmp/error.log" >&2
    fail "nginx starts"
    exit 1
fi

key=$(/usr/bin/sd-key -p "$rport" create acme "make test-deb")
check "sd-key creates a key" test -n "$key"
api=http://127.0.0.1:$port/api/v1
body=$(curl -sS -m 10 -w '\n%{http_code}' -X PATCH "$api/customers/deb_1" \
    -H "X-API-Key: $key" -H 'Content-Type: application/json' \
    -d '{"email":"deb@example.com","name":"Deb Ian"}')
check "an authenticated upsert is answered 200, wasCreated" \
    test "$(tail -n 1 <<< "$body")" = 200 -a "$(grep -c '"wasCreated":true' <<< "$body")" = 1
body=$(curl -sS -m 10 -w '\n%{http_code}' "$api/customers/deb_1" -H "X-API-Key: $key")
check "and read back" \
    test "$(tail -n 1 <<< "$body")" = 200 -a "$(grep -c '"email":"deb@example.com"' <<< "$body")" = 1
check "no key: 401" test "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "$api/customers/deb_1")" = 401
# the example's metrics location: the read above counted once (one worker:
# each request was counted before the next one was read)
metrics=$(curl -sS -m 10 "http://127.0.0.1:$port/metrics")
check "the example's /metrics counts the requests" \
    test "$(grep -c '^supportdesk_http_requests_total{route="/customers/{externalId}",method="GET",code="200"} 1$' <<< "$metrics")" = 1
check "sd-check finds the app consistent" /usr/bin/sd-check -q -p "$rport" acme

kill -QUIT "$nginx_pid"; wait_gone "$nginx_pid"; nginx_pid=
kill -TERM "$redis_pid"; wait_gone "$redis_pid"; redis_pid=
if grep -E '\[(alert|crit|emerg)\]' "$tmp/error.log" >&2; then fail "nginx logged no alert"; else ok "nginx logged no alert"; fi

# ---------------------------------------------------------------- remove
if dpkg -r "$pkg" > "$tmp/dpkg-r.log" 2>&1 && dpkg -P "$pkg" >> "$tmp/dpkg-r.log" 2>&1; then
    installed=0
    ok "dpkg -r, dpkg -P remove it"
else
    cat "$tmp/dpkg-r.log" >&2
    fail "dpkg -r, dpkg -P remove it"
fi
state > "$tmp/state.after"
if diff -u "$tmp/state.before" "$tmp/state.after" >&2; then
    ok "the machine is as it was (nginx's directories, /usr/bin, dpkg)"
else
    fail "the machine is as it was (nginx's directories, /usr/bin, dpkg)"
fi

echo "test-deb: $passed passed, $failed failed"
[ "$failed" = 0 ]
