#!/usr/bin/env bash
# run-all.sh - installs what the tests need, then builds and checks every tier
# twice: build/release (plain) and build/asan (--enable-sanitizers), each with
# `make check MN_NO_SKIP=1` (unit, integration, browser). Prints the logs of
# failed tests, then exactly one last line: "N passed, N failed, N skipped".
# Exit status 0 only when nothing failed.
#
# Usage (Debian 12): sudo bash tests/run-all.sh   (or as root: bash tests/run-all.sh)
# Env: MN_SKIP_INSTALL=1 skips apt-get/npm when everything is already there;
#      MN_BUILDS="release asan" picks the builds (default both).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

SUDO=
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi

log() { printf '=== %s\n' "$*"; }

# A setup step that fails still ends with the summary line.
setup_failed() {
    echo "setup step failed: $*" >&2
    echo
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
}

# ------------------------------------------------------------------ cleanup
policy_rc_created=0
cleanup() {
    # Only what this script created: the temporary policy-rc.d that kept apt
    # from starting apache2, nginx, lighttpd and redis at install time.
    if [ "$policy_rc_created" = 1 ]; then
        $SUDO rm -f /usr/sbin/policy-rc.d
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ packages
PKGS="build-essential autoconf automake libtool pkg-config libwebsockets-dev
libwebsockets-evlib-uv libjansson-dev libssl-dev libhiredis-dev libfcgi-dev libuv1-dev
redis-server redis-sentinel lighttpd apache2 nginx-light chromium clang-format valgrind
curl"
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ] && [ "${MN_SKIP_INSTALL:-0}" != 1 ]; then
    log "apt-get install:$missing"
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # Packages must not start system services here; tests start their own.
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        policy_rc_created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q || setup_failed "apt-get update"
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing ||
        setup_failed "apt-get install$missing"
fi

if [ "${MN_SKIP_INSTALL:-0}" != 1 ] || [ ! -d "$here/node_modules" ]; then
    log "npm ci (tests/)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) ||
        setup_failed "npm ci in tests/"
fi

# ------------------------------------------------------------ build + check
log "autoreconf -fi"
autoreconf -fi >/dev/null || setup_failed "autoreconf -fi"

failed_builds=0
failed_build_names=
run_build() {
    name=$1
    shift
    dir="$root/build/$name"
    log "build/$name: configure $*"
    rm -rf "$dir"
    mkdir -p "$dir"
    if ! (cd "$dir" && ../../configure -q "$@" >configure.out 2>&1); then
        cat "$dir/configure.out" "$dir/config.log" 2>/dev/null | tail -n 60
        failed_builds=$((failed_builds + 1))
        failed_build_names="$failed_build_names $name(configure)"
        return 0
    fi
    log "build/$name: make -j2"
    if ! (cd "$dir" && make -j2 >make.out 2>&1); then
        tail -n 80 "$dir/make.out"
        failed_builds=$((failed_builds + 1))
        failed_build_names="$failed_build_names $name(make)"
        return 0
    fi
    log "build/$name: make check MN_NO_SKIP=1"
    start=$(date +%s)
    if (cd "$dir" && make check MN_NO_SKIP=1 >check.out 2>&1); then
        :
    else
        # Failures are counted from the .trs files below; a make error with no
        # failed test (e.g. a check program that did not build) counts here.
        if ! find "$dir" -name '*.trs' -exec grep -lE '^:test-result: (FAIL|ERROR|XPASS)' {} + |
            grep -q .; then
            tail -n 80 "$dir/check.out"
            failed_builds=$((failed_builds + 1))
            failed_build_names="$failed_build_names $name(make check)"
        fi
    fi
    log "build/$name: checked in $(( $(date +%s) - start )) s"
    grep -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR|# )' "$dir/check.out" | grep -vE '^PASS' | head -n 200 || true
}

builds=${MN_BUILDS:-release asan}
for b in $builds; do
    case $b in
        release) run_build release ;;
        asan) run_build asan --enable-sanitizers ;;
        *) echo "unknown build $b" >&2; exit 2 ;;
    esac
done

# ------------------------------------------------------------ summary
passed=0
failed=0
skipped=0
failed_logs=
for b in $builds; do
    dir="$root/build/$b"
    [ -d "$dir" ] || continue
    while IFS= read -r trs; do
        p=$(grep -cE '^:test-result: (PASS|XFAIL)' "$trs" || true)
        f=$(grep -cE '^:test-result: (FAIL|ERROR|XPASS)' "$trs" || true)
        s=$(grep -cE '^:test-result: SKIP' "$trs" || true)
        passed=$((passed + p))
        failed=$((failed + f))
        skipped=$((skipped + s))
        if [ "$f" -gt 0 ]; then
            failed_logs="$failed_logs ${trs%.trs}.log"
        fi
    done < <(find "$dir" -name '*.trs' | sort)
done

for l in $failed_logs; do
    echo
    log "FAILED: ${l#"$root"/}"
    if [ "$(wc -l <"$l")" -gt 400 ]; then
        head -n 150 "$l"
        echo "[... $(wc -l <"$l") lines, middle cut ...]"
        tail -n 250 "$l"
    else
        cat "$l"
    fi
done
if [ "$failed_builds" -gt 0 ]; then
    echo
    log "build steps that failed:$failed_build_names"
    failed=$((failed + failed_builds))
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
