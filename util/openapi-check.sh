#!/usr/bin/env bash
# util/openapi-check.sh NODE_DIR RECORD_DIR: the answer check of `make test`.
# First the validator's own unit test (t/openapi/check-answers.test.js: right and
# wrong recorded answers), then every answer the t/ suite recorded in
# RECORD_DIR (SD_RECORD_DIR of the prove run) against openapi.yaml, with
# t/openapi/allow-list.yaml (t/openapi/README.md).  Exit status: the first
# failure's.
set -euo pipefail

node_dir=${1:?usage: openapi-check.sh NODE_DIR RECORD_DIR}
records=${2:?}
here=$(cd "$(dirname "$0")/.." && pwd)

export SD_NODE_DIR=$node_dir
node --test "$here/t/openapi/check-answers.test.js"
node "$here/t/openapi/check-answers.js" --spec "$here/openapi.yaml" \
    --allow "$here/t/openapi/allow-list.yaml" "$records"
