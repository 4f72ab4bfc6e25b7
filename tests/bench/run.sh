#!/bin/sh
# run.sh - `make bench`: the issue-7 matrix. For each scenario it starts one
# server at a time on a private loopback port (micronotifier-gateway; nginx +
# nchan with 1 and 2 workers; mnbench's built-in send() floor), runs mnbench
# against it, stops it, and prints one table per scenario with nchan's figures
# beside ours and the ratios. Everything is bounded: each mnbench run has
# deadlines and this script kills what it started on exit.
#
# batch is channels with 10 events per REST request (batch_events), as a
# backend sending thousands of events a second would call us; nchan has no
# batch publish, so its column there is one message per POST.
#
# Three scenarios start several processes per server: idle50k (3 gateways
# on a private redis-server, against one nginx + nchan with 3 workers),
# distributed (2 gateways on Redis against one standalone gateway, and 2
# nginx + nchan on Redis) and fcgi (nginx + FastCGI + micronotifier-api in
# front of a gateway, against the gateway's own REST port and nchan).
#
#   MN_BENCH_SCENARIOS  scenarios to run (default: all, in this order)
#                       fanout1k fanout10k channels batch idle idle50k
#                       distributed fcgi
#   MN_BENCH_SERVERS    servers (default: gateway gateway1 nchan1 nchan2 floor;
#                       gateway1 is the gateway with "workers": 1; the
#                       three scenarios above map gateway and nchan* to theirs)
#   MN_BENCH_DURATION   seconds of publishing per step (default 5)
#   MN_BENCH_OUT        also write the raw RESULT lines and tables here
#   MNBENCH, MN_GATEWAY, MN_API  the binaries (default: the build tree's)
#
# nginx-light, libnginx-mod-nchan and redis-server are installed with
# apt-get when missing (MN_BENCH_NO_INSTALL=1: not). Exit 0 when every run
# finished, 77 when nginx or its nchan module is still missing, 1 otherwise.
set -u

MNBENCH=${MNBENCH:-./tests/bench/mnbench}
GATEWAY=${MN_GATEWAY:-./micronotifier-gateway}
API=${MN_API:-./micronotifier-api}
SCENARIOS=${MN_BENCH_SCENARIOS:-"fanout1k fanout10k channels batch idle idle50k distributed fcgi"}
SERVERS=${MN_BENCH_SERVERS:-"gateway gateway1 nchan1 nchan2 floor"}
DUR=${MN_BENCH_DURATION:-5}
NCHAN_SO=${NCHAN_SO:-/usr/lib/nginx/modules/ngx_nchan_module.so}
srcdir=$(cd "$(dirname "$0")" && pwd)

tmp=$(mktemp -d /tmp/mnbench.XXXXXX) || exit 99
bg=    # every process started for the current run
taken= # ports handed out for the current run
cleanup() {
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

stop_server() {
    for p in $bg; do kill "$p" 2>/dev/null; done
    for p in $bg; do wait "$p" 2>/dev/null; done
    bg=
    taken=
}

for bin in "$MNBENCH" "$GATEWAY"; do
    [ -x "$bin" ] || { echo "run.sh: $bin not built" >&2; exit 99; }
done

# What the matrix runs against, installed from Debian's archive when missing
# (as root or with sudo; MN_BENCH_NO_INSTALL=1 leaves the machine alone).
missing=
command -v nginx >/dev/null || missing="$missing nginx-light"
[ -f "$NCHAN_SO" ] || missing="$missing libnginx-mod-nchan"
command -v redis-server >/dev/null || missing="$missing redis-server"
if [ -n "$missing" ] && [ "${MN_BENCH_NO_INSTALL:-0}" != 1 ]; then
    sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "run.sh: apt-get install$missing" >&2
    # policy-rc.d: the packages' own services are not started.
    rc_made=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null &&
            $sudo chmod 755 /usr/sbin/policy-rc.d && rc_made=1
    fi
    { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive \
        $sudo apt-get install -y -q --no-install-recommends $missing; } >&2 ||
        echo "run.sh: apt-get install failed" >&2
    [ "$rc_made" = 1 ] && $sudo rm -f /usr/sbin/policy-rc.d
fi
case " $SERVERS " in
*" nchan"*)
    if ! command -v nginx >/dev/null || [ ! -f "$NCHAN_SO" ]; then
        echo "run.sh: nginx or $NCHAN_SO missing:" \
            "apt-get install -y nginx-light libnginx-mod-nchan" >&2
        exit 77
    fi ;;
esac

# A free loopback TCP port: nothing listens on it and this run has not
# handed it out already.
free_port() {
    while :; do
        # below the ephemeral range (32768-60999), where the generator's
        # own client sockets would make a bind fail
        p=$((10000 + $(od -An -N2 -tu2 /dev/urandom) % 22000))
        case " $taken " in *" $p "*) continue ;; esac
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

# wait_port PORT PID: until something listens on PORT, at most 10 s; fails
# at once when PID, which should listen there, is gone.
wait_port() {
    i=0
    while [ $i -lt 100 ]; do
        ss -Htln "sport = :$1" | grep -q . && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# spawn LOG CMD...: CMD in the background, remembered in $bg; its pid in $last.
spawn() {
    log=$1
    shift
    "$@" >"$log" 2>&1 &
    last=$!
    bg="$bg $last"
}

# A private redis-server: its port in $rport, its pid in $redis_pid.
start_redis() {
    rport=$(free_port)
    taken="$taken $rport"
    mkdir -p "$tmp/redis"
    spawn "$tmp/redis/log" redis-server --bind 127.0.0.1 --port "$rport" --save '' \
        --appendonly no --dir "$tmp/redis" --daemonize no
    redis_pid=$last
    wait_port "$rport" "$redis_pid" || { cat "$tmp/redis/log" >&2; return 1; }
}

# gateway_conf FILE PORT EXTRA: a gateway config; EXTRA is more JSON members,
# each followed by a comma.
gateway_conf() {
    cat >"$1" <<EOF
{
    "host": "127.0.0.1",
    "port": $2,
    "log-level": "warn",$3
    "applications": [
        {"name": "bench", "id": "bench", "key": "bench-key", "secret": "bench-secret"}
    ]
}
EOF
}

# start_gateways N [redis|plain] [EXTRA]: N gateways (on a private Redis,
# database 1, with "redis"), EXTRA more config members each followed by a
# comma; their ports in $port and their pids in $pids, comma-separated.
start_gateways() {
    extra=${3:-}
    if [ "${2:-}" = redis ]; then
        start_redis || return 1
        extra="$extra
    \"redis\": {\"address\": \"127.0.0.1:$rport\", \"database\": 1},"
    fi
    k=0
    while [ $k -lt "$1" ]; do
        gport=$(free_port)
        taken="$taken $gport"
        gateway_conf "$tmp/gw$k.json" "$gport" "$extra"
        spawn "$tmp/gw$k.log" "$GATEWAY" -c "$tmp/gw$k.json"
        wait_port "$gport" "$last" || { cat "$tmp/gw$k.log" >&2; return 1; }
        port=${port:+$port,}$gport
        pids=${pids:+$pids,}$last
        k=$((k + 1))
    done
}

# nginx_conf DIR WORKERS PORT HTTP_EXTRA LOCATIONS: a private nginx config.
nginx_conf() {
    mkdir -p "$1"
    lm=
    [ -f "$NCHAN_SO" ] && lm="load_module $NCHAN_SO;"
    cat >"$1/nginx.conf" <<EOF
$lm
worker_processes $2;
worker_rlimit_nofile 20000;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $1/body;
    fastcgi_temp_path $1/fastcgi;
    ${lm:+nchan_shared_memory_size 256M;}$4
    server {
        listen 127.0.0.1:$3 backlog=4096 reuseport;
$5
    }
}
EOF
}

# nchan's locations; $1 = "redis" keeps the channels in Redis.
nchan_locations() {
    r=
    [ "${1:-}" = redis ] && r="
            nchan_use_redis on;"
    cat <<EOF
        location ~ ^/pub/(\w+)\$ {
            nchan_publisher;
            nchan_channel_id \$1;
            nchan_message_timeout 30s;$r
        }
        location ~ ^/sub/(\w+)\$ {
            nchan_subscriber websocket;
            nchan_channel_id \$1;$r
        }
EOF
}

# start_nginx DIR WORKERS PORT HTTP_EXTRA LOCATIONS: its workers' pids are
# added to $pids.
start_nginx() {
    nginx_conf "$@"
    spawn "$1/out.log" nginx -c "$1/nginx.conf" -p "$1/"
    wait_port "$3" "$last" || { cat "$1/error.log" "$1/out.log" >&2; return 1; }
    sleep 0.2
    wp=$(pgrep -P "$last" | paste -sd, -)
    [ -n "$wp" ] || return 1
    pids=${pids:+$pids,}$wp
}

# start_nchan WORKERS [INSTANCES [redis]]: nginx + nchan, one instance or
# several on a private Redis; ports in $port, workers' pids in $pids.
start_nchan() {
    extra=
    if [ "${3:-}" = redis ]; then
        start_redis || return 1
        extra="
    nchan_redis_url \"redis://127.0.0.1:$rport/1\";"
    fi
    k=0
    while [ $k -lt "${2:-1}" ]; do
        nport=$(free_port)
        taken="$taken $nport"
        start_nginx "$tmp/ng$k" "$1" "$nport" "$extra" "$(nchan_locations "${3:-}")" ||
            return 1
        port=${port:+$port,}$nport
        k=$((k + 1))
    done
}

# The REST path through nginx + FastCGI: a standalone gateway with its local
# bus, micronotifier-api on a FastCGI socket, nginx (1 worker) in front.
# Subscribers go to the gateway ($port), the publisher to nginx ($pub_port).
start_fcgi() {
    # nginx's workers run as nobody: they must reach api.sock (mode 0666)
    chmod 0711 "$tmp"
    gport=$(free_port)
    taken="$taken $gport"
    gateway_conf "$tmp/fcgi.json" "$gport" "
    \"local-socket\": \"$tmp/gw.sock\",
    \"api\": {\"fastcgi\": \"$tmp/api.sock\", \"threads\": 4, \"socket-mode\": \"0666\"},"
    spawn "$tmp/fcgi-gw.log" "$GATEWAY" -c "$tmp/fcgi.json"
    wait_port "$gport" "$last" || { cat "$tmp/fcgi-gw.log" >&2; return 1; }
    pids=$last
    spawn "$tmp/fcgi-api.log" "$API" -c "$tmp/fcgi.json"
    i=0
    while [ ! -S "$tmp/api.sock" ] && [ $i -lt 100 ] && kill -0 "$last" 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    [ -S "$tmp/api.sock" ] || { cat "$tmp/fcgi-api.log" >&2; return 1; }
    pids="$pids,$last"
    pub_port=$(free_port)
    taken="$taken $pub_port"
    start_nginx "$tmp/ngf" 1 "$pub_port" "" "        client_max_body_size 256k;
        location /apps/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:$tmp/api.sock;
        }" || return 1
    port=$gport
}

# run_one SCENARIO SERVER mnbench-args...
run_one() {
    scen=$1 srv=$2
    shift 2
    tries=0
    while :; do
        port= pids= pub_port=
        case $srv in
        gateway) start_gateways 1 && break ;;
        gateway1) start_gateways 1 plain '
    "workers": 1,' && break ;;
        gw3) start_gateways 3 redis && break ;;
        dist) start_gateways 2 redis && pids="$pids,$redis_pid" && break ;;
        fcgi) start_fcgi && break ;;
        nchan1) start_nchan 1 && break ;;
        nchan2) start_nchan 2 && break ;;
        nchan3) start_nchan 3 && break ;;
        nchanr) start_nchan 1 2 redis && pids="$pids,$redis_pid" && break ;;
        floor) port=$(free_port) && break ;;
        esac
        stop_server
        tries=$((tries + 1))
        [ $tries -lt 3 ] || { echo "run.sh: $scen: cannot start $srv" >&2; return 1; }
    done
    case $srv in
    gateway | gateway1 | gw3 | dist | fcgi) mode="--mode pusher --server-pid $pids" ;;
    nchan*) mode="--mode nchan --server-pid $pids" ;;
    floor) mode="--mode floor" ;;
    esac
    [ -n "$pub_port" ] && mode="$mode --pub-port $pub_port"
    echo "run.sh: $scen on $srv (port $port, load $(cut -d' ' -f1 /proc/loadavg))" >&2
    # shellcheck disable=SC2086 # $mode is a word list
    timeout 300 "$MNBENCH" $mode --port "$port" --label "$srv" --scenario "$scen" "$@" \
        >>"$tmp/results" || echo "run.sh: $scen on $srv failed" >&2
    stop_server
}

# The servers of a scenario: the multi-process scenarios map
# MN_BENCH_SERVERS's gateway and nchan* to their own kinds.
servers_of() {
    case $1 in
    idle50k | distributed | fcgi) ;;
    batch) # the floor has no batch either: only ours and nchan's one worker
        for s in $SERVERS; do case $s in gateway | gateway1 | nchan1) echo "$s" ;; esac; done
        return ;;
    idle) # memory: one gateway set-up is enough
        for s in $SERVERS; do [ "$s" = gateway1 ] || echo "$s"; done
        return ;;
    *) echo "$SERVERS"; return ;;
    esac
    out=
    case " $SERVERS " in *" gateway "*)
        case $1 in
        idle50k) out="gw3" ;;
        distributed) out="dist gateway" ;;
        fcgi) out="fcgi gateway" ;;
        esac ;;
    esac
    case " $SERVERS " in *" nchan"*)
        case $1 in
        idle50k) out="$out nchan3" ;;
        distributed) out="$out nchanr" ;;
        fcgi) out="$out nchan1" ;;
        esac ;;
    esac
    echo "$out"
}

# have CMD SCENARIO PACKAGE: CMD is installed, or the scenario is skipped.
have() {
    command -v "$1" >/dev/null && return 0
    echo "run.sh: $2 skipped: $1 missing (apt-get install -y $3)" >&2
    return 1
}

status=0
for scen in $SCENARIOS; do
    case $scen in
    fanout1k) args="--conns 1000 --channels 1 --rates 10,50,200,1000 --procs 2 --src 2" ;;
    fanout10k) args="--conns 10000 --channels 1 --rates 1 --procs 2 --src 4"
        dur=$DUR; [ "$dur" -lt 10 ] && dur=10; args="$args --duration $dur --drain 10" ;;
    channels) args="--conns 10000 --channels 1000 --rates 2000,10000 --procs 2 --src 4"
        args="$args --pub-conns 32" ;;
    batch) args="--conns 10000 --channels 1000 --rates 2000,10000 --procs 2 --src 4"
        args="$args --pub-conns 32 --batch 10" ;;
    idle) args="--conns 18000 --channels 1000 --rates 0 --idle 5 --procs 2 --src 4" ;;
    idle50k) have redis-server "$scen" redis-server || { status=1; continue; }
        # 4 generator processes of 12,500 (each may hold 20,000 descriptors)
        args="--conns 50000 --channels 1000 --rates 0 --idle 5 --procs 4 --src 8" ;;
    distributed) have redis-server "$scen" redis-server || { status=1; continue; }
        args="--conns 1000 --channels 1 --rates 50,200 --procs 2 --src 2" ;;
    fcgi) have nginx "$scen" nginx-light || { status=1; continue; }
        [ -x "$API" ] || { echo "run.sh: $API not built, fcgi skipped" >&2; status=1; continue; }
        args="--conns 1000 --channels 100 --rates 200,1000 --procs 2 --src 2 --pub-conns 16" ;;
    *) echo "run.sh: unknown scenario $scen" >&2; status=1; continue ;;
    esac
    case $args in *--duration*) ;; *) args="$args --duration $DUR" ;; esac
    for srv in $(servers_of "$scen"); do
        case $scen in idle*) [ "$srv" = floor ] && continue ;; esac
        # shellcheck disable=SC2086
        run_one "$scen" "$srv" $args || status=1
    done
done

touch "$tmp/results"
{
    echo "## Results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
        "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
        "Linux $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
    echo
    awk -f "$srcdir/table.awk" "$tmp/results"
} >"$tmp/tables"
cat "$tmp/tables"
if [ -n "${MN_BENCH_OUT:-}" ]; then
    cp "$tmp/results" "$MN_BENCH_OUT.raw"
    cp "$tmp/tables" "$MN_BENCH_OUT"
fi
exit $status
