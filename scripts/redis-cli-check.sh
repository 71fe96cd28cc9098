#!/usr/bin/env bash
# Talks to a local three-node raftkv cluster with the real redis-cli and redis-benchmark (from
# Debian's redis-tools), through a follower as well as the leader: in the clear, then through
# TLS with the client certificate (when these tools speak TLS). Skips, saying so, when they are
# not installed. Usage: scripts/redis-cli-check.sh [PATH-TO-raftkv]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-cli >/dev/null || ! command -v redis-benchmark >/dev/null; then
    echo "SKIPPED: redis-cli or redis-benchmark is not installed (apt-get install redis-tools)"
    exit 0
fi
source scripts/redis-cluster.sh
binary=$(raftkv_binary "${1:-}")
dir=$(mktemp -d)
trap 'stop_raftkv_cluster; rm -rf "$dir"' EXIT

failures=0
mode=plain
expect() { # expect PORT EXPECTED COMMAND...
    local port=$1 expected=$2
    shift 2
    local got
    got=$(redis-cli -p "$port" "${REDIS_TLS[@]}" "$@" 2>&1 | tr '\n' ' ' | sed 's/ *$//')
    if [[ $got == "$expected" ]]; then
        echo "ok   ($mode) redis-cli -p $port $* -> $got"
    else
        echo "FAIL ($mode) redis-cli -p $port $*: expected '$expected', got '$got'"
        failures=$((failures + 1))
    fi
}

check() { # check REDIS_BASE_PORT: the commands, through every node, then redis-benchmark
    local p=$1
    for port in "$p" $((p + 1)) $((p + 2)); do
        expect "$port" PONG ping
    done
    expect $((p + 1)) OK set greeting hello
    expect $((p + 2)) hello get greeting
    expect "$p" OK mset a 1 b 2
    expect $((p + 1)) "1 2" mget a b
    expect $((p + 2)) 3 incrby a 2
    expect "$p" "a b greeting raftkv:started" keys '*'
    expect $((p + 1)) 4 dbsize
    expect $((p + 2)) 1 cas b 2 two
    expect "$p" 2 del a b
    expect $((p + 1)) "ERR unknown command 'flushall', with args beginning with:" flushall
    if redis-cli -p "$p" "${REDIS_TLS[@]}" info replication | grep -q '^role:'; then
        echo "ok   ($mode) redis-cli info replication names the role"
    else
        echo "FAIL ($mode) info replication"
        failures=$((failures + 1))
    fi
    if redis-benchmark -p $((p + 1)) "${REDIS_TLS[@]}" -t set,get -n 2000 -c 10 -q 2>&1 |
        tr '\r' '\n' | grep -q "GET: .* requests per second"; then
        echo "ok   ($mode) redis-benchmark ran through a follower"
    else
        echo "FAIL ($mode) redis-benchmark"
        failures=$((failures + 1))
    fi
}

start_raftkv_cluster "$binary" "$dir/plain" 17101 17201
check 17201
stop_raftkv_cluster
if redis_tools_speak_tls; then
    mode=tls
    start_raftkv_cluster "$binary" "$dir/tls" 17111 17211 tls
    check 17211
    # Without the client certificate, or in the clear: refused.
    if redis-cli -p 17211 --tls --cacert "$dir/tls/certs/ca.crt" ping 2>&1 | grep -q PONG; then
        echo "FAIL (tls) a client without a certificate was served"
        failures=$((failures + 1))
    else
        echo "ok   (tls) a client without a certificate is refused"
    fi
    if redis-cli -p 17211 ping 2>&1 | grep -q "this port speaks TLS"; then
        echo "ok   (tls) a client in the clear is told to use TLS"
    else
        echo "FAIL (tls) a client in the clear was not told to use TLS"
        failures=$((failures + 1))
    fi
    stop_raftkv_cluster
else
    echo "SKIPPED: the TLS checks (this redis-cli or redis-benchmark was built without TLS)"
fi
if ((failures > 0)); then
    echo "$failures check(s) failed; node logs:"
    tail -n 20 "$dir"/*/n*.log
    exit 1
fi
echo "redis-cli checks passed"
