#!/bin/sh
# Every C file is formatted with the committed .clang-format (STYLE 1).
src=${MN_SRCDIR:-$(dirname "$0")/..}
cd "$src" || exit 99
if ! command -v clang-format >/dev/null 2>&1; then
    if [ "${MN_NO_SKIP:-0}" = 1 ]; then
        echo "Bail out! clang-format is not installed"
        exit 99
    fi
    echo "1..0 # SKIP clang-format is not installed"
    exit 0
fi
files=$(ls shared/*.[ch] gateway/*.[ch] api/*.[ch] tests/unit/*.c tests/bench/*.c 2>/dev/null)
echo "1..1"
if clang-format --dry-run --Werror $files >&2; then
    echo "ok 1 - C sources are clang-formatted"
else
    echo "not ok 1 - C sources need clang-format -i (see above)"
fi
