#!/usr/bin/env bash
# util/run.sh: `make run` once the module is built.  Starts a private
# redis-server (127.0.0.1:REDIS_PORT, data and AOF in VAR/redis) unless the
# one of a previous run still answers, (re)starts nginx (127.0.0.1:RUN_PORT,
# conf, logs and temp files in VAR/nginx) with SO loaded, creates a demo API
# key (or reuses the previous one while redis knows it) and prints it with a
# curl example.  util/stop.sh stops both.
#
# Environment (make variables, passed explicitly by the Makefile):
#   SRC_DIR      the checkout (conf/nginx-run.conf.in, redis/)
#   VAR          where the servers keep their files (var/)
#   SO           the module    NGINX_BIN  the nginx binary (make's NGINX)
#   REDIS_SERVER, REDIS_CLI    RUN_PORT, REDIS_PORT
set -euo pipefail
# shellcheck source=util/lib.sh
. "$(dirname "$0")/lib.sh"
need SRC_DIR VAR SO NGINX_BIN REDIS_SERVER REDIS_CLI RUN_PORT REDIS_PORT

conf=$VAR/nginx/nginx.conf
# nginx reads sockets to inherit (binary upgrade) from $NGINX, and then
# does not daemonize: never hand it make's NGINX=... (a command-line
# variable, exported)
unset NGINX

redis_ping() {
    [ "$("$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

mkdir -p "$VAR/redis" "$VAR/nginx/logs" "$VAR/nginx/tmp"

# redis: reuse the one a previous `make run` started
if alive "$VAR/redis.pid" redis-server; then
    for _ in $(seq 100); do redis_ping && break; sleep 0.1; done
    if ! redis_ping; then
        echo "run: redis-server (pid $(cat "$VAR/redis.pid")) does not answer on 127.0.0.1:$REDIS_PORT" >&2
        exit 1
    fi
    echo "run: redis-server already running (pid $(cat "$VAR/redis.pid"))"
else
    if port_open "$REDIS_PORT"; then
        echo "run: 127.0.0.1:$REDIS_PORT is in use (not by make run); stop that or pick REDIS_PORT=..." >&2
        exit 1
    fi
    "$REDIS_SERVER" "$SRC_DIR/redis/redis.conf" \
        --port "$REDIS_PORT" --bind 127.0.0.1 \
        --dir "$VAR/redis" --logfile "$VAR/redis/redis.log" \
        --pidfile "$VAR/redis.pid" --daemonize yes
    for _ in $(seq 100); do redis_ping && break; sleep 0.1; done
    if ! redis_ping; then
        tail -n 20 "$VAR/redis/redis.log" >&2 || true
        echo "run: redis-server did not come up on 127.0.0.1:$REDIS_PORT" >&2
        exit 1
    fi
    echo "run: redis-server started on 127.0.0.1:$REDIS_PORT (pid $(cat "$VAR/redis.pid"))"
fi

# nginx: as root, nginx would run its workers as "nobody", who may be unable
# to reach var/ of this checkout (e.g. under /root) for temp files of request
# bodies; so when root, the workers keep the invoking identity, exactly like
# a non-root run, where nginx ignores "user" (and warns): the line is omitted
if [ "$(id -u)" = 0 ]; then
    user_directive="user $(id -un) $(id -gn);"
else
    user_directive="# no \"user\": not started as root, workers run as $(id -un)"
fi
sed -e "s|@USER_DIRECTIVE@|$user_directive|" \
    -e "s|@MODULE_SO@|$SO|g" \
    -e "s|@PREFIX@|$VAR/nginx|g" \
    -e "s|@LISTEN@|127.0.0.1:$RUN_PORT|g" \
    -e "s|@REDIS@|127.0.0.1:$REDIS_PORT|g" \
    "$SRC_DIR/conf/nginx-run.conf.in" > "$conf.tmp"
mv -f "$conf.tmp" "$conf"
"$NGINX_BIN" -p "$VAR/nginx/" -c "$conf" -e stderr -t -q
# restart rather than reload, so a rebuilt .so is loaded for sure
if stop_pidfile "$VAR/nginx/nginx.pid" nginx QUIT; then
    echo "run: stopped the previous nginx"
fi
if port_open "$RUN_PORT"; then
    echo "run: 127.0.0.1:$RUN_PORT is in use (not by make run); stop that or pick RUN_PORT=..." >&2
    exit 1
fi
"$NGINX_BIN" -p "$VAR/nginx/" -c "$conf" -e stderr
url=http://127.0.0.1:$RUN_PORT
code=
for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$url/api/v1/" || true)
    [ "$code" != 000 ] && [ -n "$code" ] && break
    sleep 0.1
done
if [ "$code" = 000 ] || [ -z "$code" ]; then
    tail -n 20 "$VAR/nginx/logs/error.log" >&2 || true
    echo "run: nginx does not answer on $url" >&2
    exit 1
fi
echo "run: nginx started on $url (pid $(cat "$VAR/nginx/nginx.pid"))"

# demo key: reuse the one of a previous run while redis still knows it
keyfile=$VAR/demo-api-key
key=
if [ -s "$keyfile" ]; then
    key=$(cat "$keyfile")
    hash=$(printf '%s' "$key" | sha256sum | cut -c1-64)
    app=$("$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" hget "sd:apikey:$hash" app)
    [ "$app" = demo ] || key=
fi
if [ -z "$key" ]; then
    key=$("$SRC_DIR/redis/sd-key" -h 127.0.0.1 -p "$REDIS_PORT" create demo "make run demo key")
    (umask 077 && printf '%s\n' "$key" > "$keyfile")
fi

cat <<END

SupportDesk gateway is running
  API       $url/api/v1/   (nginx: var/nginx/nginx.conf, logs in var/nginx/logs/)
  redis     127.0.0.1:$REDIS_PORT       (data and AOF in var/redis/)
  API key   $key   (app "demo"; more keys: redis/sd-key -p $REDIS_PORT create <app>)
  metrics   $url/metrics   (Prometheus text; README, "Monitoring")

Try:
  curl -X PATCH $url/api/v1/customers/user_42 -H "X-API-Key: $key" -H "Content-Type: application/json" -d '{"email":"john@acme.com","name":"John Doe","phone":"+1 555 0100","metadata":{"plan":"premium","companyName":"Acme"}}'
  curl $url/api/v1/customers/user_42 -H "X-API-Key: $key"

Stop with: make stop
END
