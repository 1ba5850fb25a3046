#!/usr/bin/env bash
# util/openapi-lint.sh NODE_DIR SPEC CONFIG: lints SPEC (openapi.yaml) with the
# @redocly/cli that util/node-deps.sh installed in NODE_DIR, under CONFIG
# (t/openapi/redocly.yaml: the recommended rules).  Fails on any error and on
# any warning: a warning today is a problem nobody reads tomorrow.  No
# telemetry, no update check (the CLI's defaults).
set -euo pipefail

node_dir=${1:?usage: openapi-lint.sh NODE_DIR SPEC CONFIG}
spec=${2:?}
config=${3:?}

out=$(REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
      "$node_dir/node_modules/.bin/redocly" lint --config "$config" \
      --format=stylish "$spec" 2>&1) && rc=0 || rc=$?
printf '%s\n' "$out" | grep -v '^$' | grep -v 'Woohoo' || true
if [ "$rc" != 0 ]; then
    echo "openapi-lint: $spec: errors (above)" >&2
    exit 1
fi
if printf '%s\n' "$out" | grep -Eq '^ *[0-9]+:[0-9]+ +warning|[0-9]+ warnings?'; then
    echo "openapi-lint: $spec: warnings (above) fail the lint too" >&2
    exit 1
fi
echo "openapi-lint: $spec: no error, no warning"
