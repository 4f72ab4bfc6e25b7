#!/bin/sh
# Every unit test again under valgrind memcheck: 0 errors, nothing lost
# (STYLE 9). Release builds only: the sanitizer build checks with ASan/LSan.
build=${MN_BUILDDIR:-.}
tests=$(cd "$build/tests/unit" && for f in test_*; do
    case $f in *.*) ;; *) [ -x "$f" ] && echo "$f" ;; esac
done)
n=0
for t in $tests; do [ -x "$build/tests/unit/$t" ] && n=$((n + 1)); done
echo "1..$n"
i=0
for t in $tests; do
    [ -x "$build/tests/unit/$t" ] || continue
    i=$((i + 1))
    if valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=99 "$build/tests/unit/$t" >/dev/null 2>"$build/tests/unit/$t.vg"; then
        echo "ok $i - $t under valgrind: no errors, nothing lost"
    else
        echo "not ok $i - $t under valgrind"
        sed 's/^/# /' "$build/tests/unit/$t.vg" | tail -40
    fi
done
