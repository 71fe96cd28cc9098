#!/usr/bin/env bash
# A node restarting with a large log: its peak RSS (VmHWM) and its time to catch up (from its
# start until it has applied the whole log, which the others have committed again).
#
# Once, with the first binary: a 3-node cluster on loopback, snapshots off, takes PUTS puts of
# 100 bytes over PUTS keys, so that every node's log holds them all. Then RUNS times, the
# binaries alternated within each round: nodes 1 and 2 start again from copies of that state,
# then node 3, which is measured until it has caught up.
#
# Usage: scripts/restart-bench.sh BINARY [BINARY...]
#   PUTS=300000 RUNS=3 PORT=7151 (ports PORT..PORT+2), DATA=DIR (about 4x the log, a
#   temporary directory by default, removed at the end), SERVE_ARGS="--log-cache-bytes 8388608 ..." for every
#   node. Prints one line per run, then the medians per binary. Needs release builds, Linux.
set -euo pipefail
source "$(dirname "$0")/bench-nodes.sh"
check_binaries "$@"
puts=${PUTS:-300000}
runs=${RUNS:-3}
bench_nodes_on "${PORT:-7151}"
bench_data_dir
filled=$data/filled
read -r -a serve_args <<<"--snapshot-bytes 1000000000000 ${SERVE_ARGS:-}"

statuses() { "$1" status --cluster "$cluster" --json 2>/dev/null || true; }
leader_commit() { statuses "$1" | jq -s '[.[] | select(.role == "Leader") | .commit] | max // 0'; }
applied() { # applied BINARY ID INDEX: node ID has applied INDEX
    local applied
    applied=$(statuses "$1" | jq -s --argjson id "$2" '[.[] | select(.id == $id) | .applied] | max // 0')
    ((applied >= $3))
}

fill() {
    local binary=$1 a b c
    mkdir -p "$filled"
    start "$binary" "$filled" 1 "${serve_args[@]}"; a=$started
    start "$binary" "$filled" 2 "${serve_args[@]}"; b=$started
    start "$binary" "$filled" 3 "${serve_args[@]}"; c=$started
    until_true 60 "a leader" has_leader "$binary"
    "$binary" bench --cluster "$cluster" --clients 50 --value-size 100 --ops "$puts" \
        --keys "$puts" | tail -1
    leader_commit "$binary" >"$filled/commit"
    until_true 60 "node 3 to apply the puts" applied "$binary" 3 "$(cat "$filled/commit")"
    stop "$a" "$b" "$c"
    echo "filled: $(cat "$filled/commit") entries, $(du -sb "$filled/n3/wal" | cut -f1) bytes of WAL per node"
}

measure() { # measure BINARY: one restart of node 3; prints its peak RSS and catch-up ms
    local binary=$1 run=$data/run a b c commit started_ms caught_ms peak
    rm -rf "$run"
    cp -a "$filled" "$run"
    for id in 1 2 3; do : >"$run/n$id.log"; done
    start "$binary" "$run" 1 "${serve_args[@]}"; a=$started
    start "$binary" "$run" 2 "${serve_args[@]}"; b=$started
    commit=$(cat "$run/commit")
    until_true 300 "a leader" has_leader "$binary"
    until_true 300 "the leader to commit the log" applied "$binary" 1 "$commit"
    started_ms=$(date +%s%3N)
    start "$binary" "$run" 3 "${serve_args[@]}"; c=$started
    until_true 600 "node 3 to catch up" applied "$binary" 3 "$commit"
    caught_ms=$(($(date +%s%3N) - started_ms))
    peak=$(peak_rss "$c")
    stop "$a" "$b" "$c"
    rm -rf "$run"
    echo "$peak $caught_ms"
}

fill "$1"
results=$(mktemp)
for round in $(seq 1 "$runs"); do
    for binary in "$@"; do
        read -r peak caught_ms < <(measure "$binary")
        echo "$binary round $round (load $(cut -d' ' -f1 /proc/loadavg)): peak RSS" \
            "$((peak >> 20)) MiB, caught up in $caught_ms ms"
        echo "$binary $peak $caught_ms" >>"$results"
    done
done
for binary in "$@"; do
    peak=$(median_of "$results" "$binary" 2)
    caught_ms=$(median_of "$results" "$binary" 3)
    echo "$binary: median peak RSS $((peak >> 20)) MiB, caught up in $caught_ms ms"
done
rm -f "$results"
