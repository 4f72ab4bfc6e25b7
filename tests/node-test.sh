#!/bin/sh
# Runs one Node test file with TAP output for automake's tap driver.
# Without the npm packages the file is skipped (a TAP plan "1..0 # SKIP",
# which the driver counts as SKIP), unless MN_NO_SKIP=1: then it is an error.
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$here/node_modules" ]; then
    if [ "${MN_NO_SKIP:-0}" = 1 ]; then
        echo "Bail out! tests/node_modules missing: run (cd tests && npm ci)"
        exit 99
    fi
    echo "1..0 # SKIP tests/node_modules missing: run (cd tests && npm ci)"
    exit 0
fi
exec node --test --test-reporter=tap --test-concurrency=1 "$1"
