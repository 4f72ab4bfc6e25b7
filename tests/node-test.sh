#!/bin/sh
# Runs one Node test file with TAP output for automake's tap driver.
# Skips (77) when the npm packages are not installed, unless MN_NO_SKIP=1.
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$here/node_modules" ]; then
    echo "1..0 # SKIP tests/node_modules missing: run (cd tests && npm ci)"
    [ "${MN_NO_SKIP:-0}" = 1 ] && exit 99
    exit 77
fi
exec node --test --test-reporter=tap --test-concurrency=1 "$1"
