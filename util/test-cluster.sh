#!/usr/bin/env bash
# util/test-cluster.sh SO [standalone]: the cluster pass of the t/ suite
# (`make test` after its single-Redis pass, `make test-cluster` alone).
#
# Runs `prove -I t/lib t/` once more with SD_CLUSTER=1: every environment's
# storage is then a Redis Cluster of 3 masters and 3 replicas
# (t/lib/SupportDesk/Cluster.pm) and nginx is given
# `supportdesk_redis_cluster <masters>;`; the files that only make sense on
# one redis-server skip themselves, saying why (t/README.md).
#
# Gate: only when the module SO knows the directive (its name is in the .so).
# Before that nginx could not even start in cluster mode, so the pass is
# skipped with a note saying so; standalone (make test-cluster) it then runs
# t/70-cluster-harness.t alone, the harness's own test, which needs no
# module.  Once the directive is built in, the gate opens by itself.
#
# Environment: PROVE_ARGS (extra prove options), SD_RECORD_DIR (answers
# recorded for openapi-check, as in the single pass).
set -euo pipefail

so=${1:?usage: test-cluster.sh SO [standalone]}
standalone=${2:-}
directive=supportdesk_redis_cluster

if [ ! -f "$so" ]; then
    echo "test-cluster: $so is not built (make build)" >&2
    exit 2
fi

if ! grep -q "$directive" "$so"; then
    echo "test-cluster: SKIPPED: the cluster pass of the API suite (SD_CLUSTER=1)."
    echo "test-cluster: $so has no $directive directive yet,"
    echo "test-cluster: so nginx cannot start in cluster mode; the pass runs by itself once it has."
    if [ -n "$standalone" ]; then
        echo "test-cluster: running the cluster harness's own test instead"
        exec prove -I t/lib --timer ${PROVE_ARGS:-} t/70-cluster-harness.t
    fi
    exit 0
fi

start=$(date +%s)
rc=0
SD_CLUSTER=1 SD_MODULE="$so" prove -I t/lib --timer ${PROVE_ARGS:-} t/ || rc=$?
echo "test-cluster: the cluster pass took $(( $(date +%s) - start )) s, prove exit $rc"
exit $rc
