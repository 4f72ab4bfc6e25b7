#!/bin/sh
# run.sh - `make bench`: the issue-7 matrix. For each scenario it starts one
# server at a time on a private loopback port (micronotifier-gateway; nginx +
# nchan with 1 and 2 workers; mnbench's built-in send() floor), runs mnbench
# against it, stops it, and prints one table per scenario with nchan's figures
# beside ours and the ratios. Everything is bounded: each mnbench run has
# deadlines and this script kills what it started on exit.
#
#   MN_BENCH_SCENARIOS  scenarios to run (default: all, in this order)
#                       fanout1k fanout10k channels idle
#   MN_BENCH_SERVERS    servers (default: gateway nchan1 nchan2 floor)
#   MN_BENCH_DURATION   seconds of publishing per step (default 5)
#   MN_BENCH_OUT        also write the raw RESULT lines and tables here
#   MNBENCH, MN_GATEWAY the binaries (default: the build tree's)
#
# Exit 0 when every run finished, 77 when nginx or its nchan module is
# missing, 1 otherwise.
set -u

MNBENCH=${MNBENCH:-./tests/bench/mnbench}
GATEWAY=${MN_GATEWAY:-./micronotifier-gateway}
SCENARIOS=${MN_BENCH_SCENARIOS:-"fanout1k fanout10k channels idle"}
SERVERS=${MN_BENCH_SERVERS:-"gateway nchan1 nchan2 floor"}
DUR=${MN_BENCH_DURATION:-5}
NCHAN_SO=${NCHAN_SO:-/usr/lib/nginx/modules/ngx_nchan_module.so}
srcdir=$(cd "$(dirname "$0")" && pwd)

tmp=$(mktemp -d /tmp/mnbench.XXXXXX) || exit 99
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

for bin in "$MNBENCH" "$GATEWAY"; do
    [ -x "$bin" ] || { echo "run.sh: $bin not built" >&2; exit 99; }
done
case " $SERVERS " in
*" nchan"*)
    if ! command -v nginx >/dev/null || [ ! -f "$NCHAN_SO" ]; then
        echo "run.sh: nginx or $NCHAN_SO missing:" \
            "apt-get install -y nginx-light libnginx-mod-nchan" >&2
        exit 77
    fi ;;
esac

# A free loopback TCP port (nothing listening on it).
free_port() {
    while :; do
        # below the ephemeral range (32768-60999), where the generator's
        # own client sockets would make a bind fail
        p=$(( 10000 + $(od -An -N2 -tu2 /dev/urandom) % 22000 ))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

# Waits until something listens on port $1, at most 10 s.
wait_port() {
    i=0
    while [ $i -lt 100 ]; do
        ss -Htln "sport = :$1" | grep -q . && return 0
        kill -0 "$server_pid" 2>/dev/null || return 1 # it could not listen
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

start_gateway() {
    cat >"$tmp/gw.json" <<EOF
{
    "host": "127.0.0.1",
    "port": $port,
    "log-level": "warn",
    "applications": [
        {"name": "bench", "id": "bench", "key": "bench-key", "secret": "bench-secret"}
    ]
}
EOF
    "$GATEWAY" -c "$tmp/gw.json" >"$tmp/gw.log" 2>&1 &
    server_pid=$!
    wait_port "$port" || { cat "$tmp/gw.log" >&2; return 1; }
    pids=$server_pid
}

start_nchan() {
    mkdir -p "$tmp/ng"
    cat >"$tmp/ng/nginx.conf" <<EOF
load_module $NCHAN_SO;
worker_processes $1;
worker_rlimit_nofile 20000;
daemon off;
pid $tmp/ng/nginx.pid;
error_log $tmp/ng/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $tmp/ng/body;
    nchan_shared_memory_size 256M;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location ~ ^/pub/(\w+)\$ {
            nchan_publisher;
            nchan_channel_id \$1;
            nchan_message_timeout 30s;
        }
        location ~ ^/sub/(\w+)\$ {
            nchan_subscriber websocket;
            nchan_channel_id \$1;
        }
    }
}
EOF
    nginx -c "$tmp/ng/nginx.conf" -p "$tmp/ng/" >"$tmp/ng/out.log" 2>&1 &
    server_pid=$!
    wait_port "$port" || { cat "$tmp/ng/error.log" >&2; return 1; }
    sleep 0.2
    pids=$(pgrep -P "$server_pid" | paste -sd, -)
    [ -n "$pids" ]
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
}

# run_one SCENARIO SERVER mnbench-args...
run_one() {
    scen=$1 srv=$2
    shift 2
    tries=0
    while :; do
        port=$(free_port)
        pids=
        case $srv in
        gateway) start_gateway && break ;;
        nchan1) start_nchan 1 && break ;;
        nchan2) start_nchan 2 && break ;;
        floor) break ;;
        esac
        stop_server
        tries=$((tries + 1))
        [ $tries -lt 3 ] || return 1
    done
    case $srv in
    gateway) mode="--mode pusher --server-pid $pids" ;;
    nchan*) mode="--mode nchan --server-pid $pids" ;;
    floor) mode="--mode floor" ;;
    esac
    echo "run.sh: $scen on $srv (port $port)" >&2
    # shellcheck disable=SC2086 # $mode is a word list
    timeout 300 "$MNBENCH" $mode --port "$port" --label "$srv" --scenario "$scen" "$@" \
        >>"$tmp/results" || echo "run.sh: $scen on $srv failed" >&2
    stop_server
}

status=0
for scen in $SCENARIOS; do
    case $scen in
    fanout1k) args="--conns 1000 --channels 1 --rates 10,50,200,1000 --procs 2 --src 2" ;;
    fanout10k) args="--conns 10000 --channels 1 --rates 1 --procs 2 --src 4"
        dur=$DUR; [ "$dur" -lt 10 ] && dur=10; args="$args --duration $dur --drain 10" ;;
    channels) args="--conns 10000 --channels 1000 --rates 2000,10000 --procs 2 --src 4"
        args="$args --pub-conns 32" ;;
    idle) args="--conns 18000 --channels 1000 --rates 0 --idle 5 --procs 2 --src 4" ;;
    *) echo "run.sh: unknown scenario $scen" >&2; status=1; continue ;;
    esac
    case $args in *--duration*) ;; *) args="$args --duration $DUR" ;; esac
    for srv in $SERVERS; do
        [ "$scen" = idle ] && [ "$srv" = floor ] && continue
        # shellcheck disable=SC2086
        run_one "$scen" "$srv" $args || status=1
    done
done

touch "$tmp/results"
{
    echo "## Results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
        "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
        "Linux $(uname -r))"
    echo
    awk -f "$srcdir/table.awk" "$tmp/results"
} >"$tmp/tables"
cat "$tmp/tables"
if [ -n "${MN_BENCH_OUT:-}" ]; then
    cp "$tmp/results" "$MN_BENCH_OUT.raw"
    cp "$tmp/tables" "$MN_BENCH_OUT"
fi
exit $status
