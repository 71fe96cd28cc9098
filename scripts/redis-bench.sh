#!/usr/bin/env bash
# One run of redis-benchmark (-t set,get -n 200000 -c 50 by default) against
#   (a) a three-node raftkv cluster through the leader's Redis listener (every write fsync'ed
#       on a majority of three), then through a follower's (which forwards to the leader),
#       then a TLS cluster through the leader's listener with the client certificate (when
#       redis-benchmark speaks TLS),
#   (b) redis-server, one node, appendonly yes, appendfsync always,
#   (c) redis-server, one node, appendonly yes, appendfsync everysec,
# one after the other on this machine, then a table of ops/s and p50 for each, and one of the
# CPU time (user + system) each server process used per request, by test: each raftkv node
# (leader and followers) and redis-server. SET and GET run as two redis-benchmark calls so that
# each test's CPU is its own.
# Installs redis-server and redis-tools with apt-get when it can (as root), else skips.
# Usage: scripts/redis-bench.sh [PATH-TO-raftkv]   (REQUESTS=200000 CLIENTS=50 to change;
#        PIPELINE=16 pipelines 16 commands per connection, redis-benchmark's -P;
#        SERVE_ARGS=--read-lease adds those words to every raftkv node's serve command;
#        TESTS="set" runs only SET; CONFIGS="leader always" runs only the raftkv cluster through
#        its leader and redis-server fsync-always (of: leader follower tls always everysec);
#        BASE_PORT=17300 moves the ports used: BASE_PORT+1.. for raftkv, +101.. for its Redis
#        listeners, +11.. and +111.. for the TLS cluster, +201 and +202 for redis-server)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${REQUESTS:-200000}
clients=${CLIENTS:-50}
pipeline=${PIPELINE:-1}
base_port=${BASE_PORT:-17300}
read -ra tests <<<"${TESTS:-set get}"
configs=" ${CONFIGS:-leader follower tls always everysec} "
wanted() { [[ $configs == *" $1 "* ]]; }

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing redis-server and redis-tools"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
    fi
fi
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    echo "SKIPPED: redis-server or redis-benchmark is not installed and could not be (apt-get install redis-server redis-tools)"
    exit 0
fi
source scripts/redis-cluster.sh
binary=$(raftkv_binary "${1:-}")
dir=$(mktemp -d)
redis_pid=
cleanup() {
    stop_raftkv_cluster
    [[ -n $redis_pid ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

results=()
cpu_lines=()
# cpu_ticks PID: the user and system CPU time the process used so far, in clock ticks.
# "machine" stands for every core of the machine (busy: not idle nor waiting for I/O), other
# processes' work included: near 1e6 * cores / (ops/s) when the test is bound by CPU.
cpu_ticks() {
    if [[ $1 == machine ]]; then
        awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
    else
        awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
    fi
}
tick_hz=$(getconf CLK_TCK)
bench() { # bench NAME PORT [LABEL=PID ...]: runs redis-benchmark, one test at a time; keeps
    # "NAME TEST ops/s p50" lines, and the CPU each LABELled process used per request
    local name=$1 port=$2 test line label pid
    shift 2
    for test in "${tests[@]}"; do
        local before=()
        for label in "$@"; do before+=("$(cpu_ticks "${label#*=}")"); done
        while read -r line; do
            # e.g. "SET: 33738.19 requests per second, p50=1.191 msec"
            if [[ $line =~ ^([A-Z]+):\ ([0-9.]+)\ requests\ per\ second,\ p50=([0-9.]+) ]]; then
                results+=("$name ${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]}")
            fi
        done < <(redis-benchmark -p "$port" "${REDIS_TLS[@]}" -t "$test" -n "$requests" -c "$clients" -P "$pipeline" -q 2>&1 | tr '\r' '\n')
        local i=0
        for label in "$@"; do
            pid=${label#*=}
            local used=$(($(cpu_ticks "$pid") - before[i]))
            cpu_lines+=("$name ${test^^} ${label%%=*} $(awk -v t="$used" -v hz="$tick_hz" -v n="$requests" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')")
            i=$((i + 1))
        done
    done
}

# node_labels LEADER_INDEX: "leader=PID follower=PID follower=PID" for the raftkv nodes.
node_labels() {
    local i
    for i in 0 1 2; do
        if ((i == $1)); then echo "leader=${RAFTKV_PIDS[i]}"; else echo "follower-n$((i + 1))=${RAFTKV_PIDS[i]}"; fi
    done
}

leader_port() { # leader_port REDIS_BASE_PORT: the Redis port of the leader, as INFO names it
    local leader
    leader=$(redis-cli -p "$1" "${REDIS_TLS[@]}" info replication | tr -d '\r' | awk -F: '$1 == "leader" { print $2 }')
    [[ $leader =~ ^[123]$ ]] || { echo "no leader named by INFO: '$leader'" >&2; exit 1; }
    echo $(($1 + leader - 1))
}

start_redis() { # start_redis PORT FSYNC
    mkdir -p "$dir/redis-$2"
    redis-server --port "$1" --dir "$dir/redis-$2" --appendonly yes --appendfsync "$2" \
        --save '' --daemonize no >"$dir/redis-$2.log" 2>&1 &
    redis_pid=$!
    local deadline=$((SECONDS + 10))
    until redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; do
        ((SECONDS > deadline)) && { echo "redis-server did not start" >&2; exit 1; }
        sleep 0.1
    done
}

stop_redis() {
    kill "$redis_pid" && wait "$redis_pid" 2>/dev/null || true
    redis_pid=
}

# A node that could not start (its port taken) must not leave another cluster to be measured.
start_own_cluster() { # start_own_cluster DIR BASE_PORT REDIS_BASE_PORT [tls]
    start_raftkv_cluster "$binary" "$@"
    local pid
    for pid in "${RAFTKV_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "a raftkv node exited at start: are the ports from BASE_PORT free?" >&2; exit 1; }
    done
}

echo "redis-benchmark -t ${tests[*]} -n $requests -c $clients -P $pipeline, one configuration after the other"
redis_base=$((base_port + 101))
if wanted leader || wanted follower; then
    start_own_cluster "$dir/plain" $((base_port + 1)) $redis_base
    leader=$(leader_port $redis_base)
    mapfile -t labels < <(node_labels $((leader - redis_base)))
    wanted leader && bench "raftkv-3-nodes" "$leader" "${labels[@]}" machine=machine
    wanted follower && bench "raftkv-via-follower" $((redis_base + (leader - redis_base + 1) % 3)) "${labels[@]}" machine=machine
    stop_raftkv_cluster
fi
if wanted tls && redis_tools_speak_tls; then
    start_own_cluster "$dir/tls" $((base_port + 11)) $((base_port + 111)) tls
    leader=$(leader_port $((base_port + 111)))
    mapfile -t labels < <(node_labels $((leader - base_port - 111)))
    bench "raftkv-3-nodes-tls" "$leader" "${labels[@]}" machine=machine
    stop_raftkv_cluster
fi
if wanted always; then
    start_redis $((base_port + 201)) always
    bench "redis-fsync-always" $((base_port + 201)) "redis-server=$redis_pid" machine=machine
    stop_redis
fi
if wanted everysec; then
    start_redis $((base_port + 202)) everysec
    bench "redis-fsync-everysec" $((base_port + 202)) "redis-server=$redis_pid" machine=machine
    stop_redis
fi

printf '%-22s %-4s %12s %9s\n' configuration test ops/s "p50 ms"
for result in "${results[@]}"; do
    read -r name test ops p50 <<<"$result"
    printf '%-22s %-4s %12s %9s\n' "$name" "$test" "$ops" "$p50"
done
echo "CPU per request (user + system, from /proc/PID/stat; less sensitive to other load than ops/s):"
printf '%-22s %-4s %-12s %10s\n' configuration test process "us/request"
for line in "${cpu_lines[@]}"; do
    read -r name test process us <<<"$line"
    printf '%-22s %-4s %-12s %10s\n' "$name" "$test" "$process" "$us"
done
ops_of() { printf '%s\n' "${results[@]}" | awk -v n="$1" -v t="$2" '$1 == n && $2 == t { print $3 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "raftkv SET / redis fsync-always SET: $(ratio "$(ops_of raftkv-3-nodes SET)" "$(ops_of redis-fsync-always SET)") (target 1.5)"
echo "raftkv GET / redis fsync-everysec GET: $(ratio "$(ops_of raftkv-3-nodes GET)" "$(ops_of redis-fsync-everysec GET)") (target 1.0)"
if [[ -n $(ops_of raftkv-3-nodes-tls SET) ]]; then
    echo "raftkv through TLS / in the clear: SET $(ratio "$(ops_of raftkv-3-nodes-tls SET)" "$(ops_of raftkv-3-nodes SET)"), GET $(ratio "$(ops_of raftkv-3-nodes-tls GET)" "$(ops_of raftkv-3-nodes GET)")"
fi
if [[ -n $(ops_of raftkv-via-follower SET)$(ops_of raftkv-via-follower GET) ]]; then
    echo "through a follower: SET ratio $(ratio "$(ops_of raftkv-via-follower SET)" "$(ops_of redis-fsync-always SET)"), GET ratio $(ratio "$(ops_of raftkv-via-follower GET)" "$(ops_of redis-fsync-everysec GET)")"
fi
