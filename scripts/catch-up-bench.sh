#!/usr/bin/env bash
# A follower catching up through a large snapshot: its peak RSS (VmHWM) and the bytes it
# writes (write_bytes of /proc/PID/io), from its start until the snapshot is installed.
#
# Once, with the first binary: a 3-node cluster on loopback takes KEYS puts of 100 bytes over
# KEYS keys while node 3 is down, then nodes 1 and 2 snapshot their whole log (so that the
# follower's catch-up is the snapshot, not a log tail). Then RUNS times, the binaries
# alternated within each round: nodes 1 and 2 start again from copies of that state, node 3
# from its old one, and node 3 is measured until its snapshot is installed.
#
# Usage: scripts/catch-up-bench.sh BINARY [BINARY...]
#   KEYS=2000000 RUNS=3 PORT=7141 (ports PORT..PORT+2), DATA=DIR (about 3x the snapshot
#   size, twice: the state filled once and a copy per run; a temporary directory by default, removed at the end).
# Prints one line per run, then the medians per binary. Needs release builds, Linux.
set -euo pipefail
source "$(dirname "$0")/bench-nodes.sh"
check_binaries "$@"
keys=${KEYS:-2000000}
runs=${RUNS:-3}
bench_nodes_on "${PORT:-7141}"
bench_data_dir
filled=$data/filled

snapshots_settled() { # snapshots_settled LOG: one saved at least, none under way for 3 s
    local saving saved
    saving=$(grep -c "saving snapshot" "$1" || true)
    saved=$(grep -c "snapshot saved" "$1" || true)
    ((saved > 0 && saving == saved)) || return 1
    sleep 3
    [[ $(grep -c "saving snapshot" "$1" || true) == "$saving" ]]
}
installed() { # installed DIR: node 3 holds a snapshot and nothing received is left over
    [[ -e $1/n3/snapshot && ! -e $1/n3/snapshot.incoming && ! -e $1/n3/snapshot.incoming.sums ]]
}

fill() {
    local binary=$1 a b c
    mkdir -p "$filled"
    start "$binary" "$filled" 1; a=$started
    start "$binary" "$filled" 2; b=$started
    start "$binary" "$filled" 3; c=$started
    until_true 60 "a leader" has_leader "$binary"
    "$binary" put --cluster "$cluster" first 1 >/dev/null
    stop "$c"
    "$binary" bench --cluster "$cluster" --clients 50 --value-size 100 --ops "$keys" \
        --keys "$keys" | tail -1
    stop "$a" "$b"
    # Again with a small threshold: each node snapshots its whole log.
    local compact=(--snapshot-bytes 1000000 --snapshot-growth-percent 0)
    : >"$filled/n1.log"
    : >"$filled/n2.log"
    start "$binary" "$filled" 1 "${compact[@]}"; a=$started
    start "$binary" "$filled" 2 "${compact[@]}"; b=$started
    until_true 600 "node 1's snapshots" snapshots_settled "$filled/n1.log"
    until_true 600 "node 2's snapshots" snapshots_settled "$filled/n2.log"
    stop "$a" "$b"
    echo "filled: $(stat -c %s "$filled/n1/snapshot") bytes of snapshot"
}

measure() { # measure BINARY: one catch-up of node 3; prints peak RSS and bytes written
    local binary=$1 run=$data/run a b c peak written
    rm -rf "$run"
    cp -a "$filled" "$run"
    for id in 1 2 3; do : >"$run/n$id.log"; done
    start "$binary" "$run" 1; a=$started
    start "$binary" "$run" 2; b=$started
    until_true 120 "a leader" has_leader "$binary"
    sleep 3 # The leader settles.
    start "$binary" "$run" 3; c=$started
    until_true 600 "node 3's snapshot" installed "$run"
    peak=$(peak_rss "$c")
    written=$(awk '/^write_bytes/ { print $2 }' "/proc/$c/io")
    stop "$a" "$b" "$c"
    rm -rf "$run"
    echo "$peak $written"
}

fill "$1"
results=$(mktemp)
for round in $(seq 1 "$runs"); do
    for binary in "$@"; do
        read -r peak written < <(measure "$binary")
        echo "$binary round $round: peak RSS $((peak >> 20)) MiB, written $((written >> 20)) MiB"
        echo "$binary $peak $written" >>"$results"
    done
done
snapshot=$(stat -c %s "$filled/n1/snapshot")
for binary in "$@"; do
    peak=$(median_of "$results" "$binary" 2)
    written=$(median_of "$results" "$binary" 3)
    awk -v b="$binary" -v p="$peak" -v w="$written" -v s="$snapshot" 'BEGIN {
        printf "%s: median peak RSS %d MiB (%.2fx the snapshot), written %d MiB (%.2fx)\n",
            b, p / 1048576, p / s, w / 1048576, w / s }'
done
rm -f "$results"
