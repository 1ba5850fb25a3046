#!/usr/bin/env bash
# util/test-tls.sh SO: the TLS passes of the t/ suite (`make test-tls`;
# .ci/run runs it after `make test`, which stays without them: about 10
# minutes already).
#
# Runs `prove -I t/lib t/` twice with SD_TLS=1: on one Redis, then on a
# Redis Cluster (SD_CLUSTER=1). The harness makes a test PKI with openssl
# (a CA, a certificate for localhost / 127.0.0.1), gives every redis-server
# and cluster node it starts a TLS port (the cluster bus and the
# replication over TLS too) and nginx that port with supportdesk_redis_ssl
# on, verify on, the CA and the name; the files that cannot run over TLS,
# or that TLS changes nothing for, skip themselves saying why (t/README.md,
# TLS mode).
#
# Environment: PROVE_ARGS (extra prove options).
set -euo pipefail

so=${1:?usage: test-tls.sh SO}

if [ ! -f "$so" ]; then
    echo "test-tls: $so is not built (make build)" >&2
    exit 2
fi

rc=0
for pass in single cluster; do
    cluster=
    [ "$pass" = cluster ] && cluster=1
    start=$(date +%s)
    prc=0
    SD_TLS=1 SD_CLUSTER=$cluster SD_MODULE="$so" \
        prove -I t/lib --timer ${PROVE_ARGS:-} t/ || prc=$?
    echo "test-tls: the TLS pass on $( [ "$pass" = cluster ] && echo 'a Redis Cluster' || echo 'one Redis' )" \
         "took $(( $(date +%s) - start )) s, prove exit $prc"
    [ "$prc" = 0 ] || rc=$prc
done
exit $rc
