#!/usr/bin/env bash
# util/stop.sh: `make stop`: stop the nginx and the redis-server that
# util/run.sh started (their pid files in VAR), each only if its pid file
# names a live process of that name.
#
# Environment: VAR (var/ of the checkout, passed by the Makefile).
set -euo pipefail
# shellcheck source=util/lib.sh
. "$(dirname "$0")/lib.sh"
need VAR

if stop_pidfile "$VAR/nginx/nginx.pid" nginx QUIT; then
    echo "stop: nginx stopped"
else
    echo "stop: nginx was not running"
fi
if stop_pidfile "$VAR/redis.pid" redis-server TERM; then
    echo "stop: redis-server stopped"
else
    echo "stop: redis-server was not running"
fi
