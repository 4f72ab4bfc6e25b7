#!/bin/sh
# docs/config.md must be what the config key table generates.
src=${MN_SRCDIR:-$(dirname "$0")/..}
gw=${MN_GATEWAY:-./micronotifier-gateway}
echo "1..1"
if "$gw" --config-docs | diff -u "$src/docs/config.md" - >&2; then
    echo "ok 1 - docs/config.md matches the config key table"
else
    echo "not ok 1 - docs/config.md is stale: run micronotifier-gateway --config-docs > docs/config.md"
fi
