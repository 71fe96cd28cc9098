#!/usr/bin/env bash
# Talks to a local three-node raftkv cluster with the real redis-cli and redis-benchmark (from
# Debian's redis-tools), through a follower as well as the leader. Skips, saying so, when they
# are not installed. Usage: scripts/redis-cli-check.sh [PATH-TO-raftkv]
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
start_raftkv_cluster "$binary" "$dir" 17101 17201

failures=0
expect() { # expect PORT EXPECTED COMMAND...
    local port=$1 expected=$2
    shift 2
    local got
    got=$(redis-cli -p "$port" "$@" 2>&1 | tr '\n' ' ' | sed 's/ *$//')
    if [[ $got == "$expected" ]]; then
        echo "ok   redis-cli -p $port $* -> $got"
    else
        echo "FAIL redis-cli -p $port $*: expected '$expected', got '$got'"
        failures=$((failures + 1))
    fi
}
for port in 17201 17202 17203; do
    expect "$port" PONG ping
done
expect 17202 OK set greeting hello
expect 17203 hello get greeting
expect 17201 OK mset a 1 b 2
expect 17202 "1 2" mget a b
expect 17203 3 incrby a 2
expect 17201 "a b greeting raftkv:started" keys '*'
expect 17202 4 dbsize
expect 17203 1 cas b 2 two
expect 17201 2 del a b
expect 17202 "ERR unknown command 'flushall', with args beginning with:" flushall
redis-cli -p 17201 info replication | grep -q '^role:' && echo "ok   redis-cli info replication names the role" \
    || { echo "FAIL info replication"; failures=$((failures + 1)); }
if redis-benchmark -p 17202 -t set,get -n 2000 -c 10 -q 2>&1 | tr '\r' '\n' | grep -q "GET: .* requests per second"; then
    echo "ok   redis-benchmark ran through a follower"
else
    echo "FAIL redis-benchmark"
    failures=$((failures + 1))
fi
if ((failures > 0)); then
    echo "$failures check(s) failed; node logs:"
    tail -n 20 "$dir"/n*.log
    exit 1
fi
echo "redis-cli checks passed"
