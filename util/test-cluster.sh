#!/usr/bin/env bash
# util/test-cluster.sh SO: the cluster pass of the t/ suite (`make test`
# after its single-Redis pass, `make test-cluster` alone).
#
# Runs `prove -I t/lib t/` once more with SD_CLUSTER=1: every environment's
# storage is then a Redis Cluster of 3 masters and 3 replicas
# (t/lib/SupportDesk/Cluster.pm) and nginx is given
# `supportdesk_redis_cluster <masters>;`; the files that only make sense on
# one redis-server skip themselves, saying why (t/README.md).
#
# Environment: PROVE_ARGS (extra prove options), SD_RECORD_DIR (answers
# recorded for openapi-check, as in the single pass).
set -euo pipefail

so=${1:?usage: test-cluster.sh SO}

if [ ! -f "$so" ]; then
    echo "test-cluster: $so is not built (make build)" >&2
    exit 2
fi

start=$(date +%s)
rc=0
SD_CLUSTER=1 SD_MODULE="$so" prove -I t/lib --timer ${PROVE_ARGS:-} t/ || rc=$?
echo "test-cluster: the cluster pass took $(( $(date +%s) - start )) s, prove exit $rc"
exit $rc
