#!/usr/bin/env bash
# The "no stalls" benchmark suite: every case below RUNS times (3 by default) for each raftkv
# binary given, the binaries alternated within each round so that they share the machine's
# mood, then one table of medians per case and binary.
#
#   store-default    2,000,000 puts of 100 bytes over 2,000,000 keys, 50 clients, default threshold
#   store-4mb        the same with --snapshot-bytes 4000000
#   store-nosnap     the same with snapshots off (--snapshot-bytes 1000000000000): the baseline
#   clients-100      100 clients, 256-byte puts, 300,000 ops, with the floor (for the disk's tail)
#   single-client    1 client, 10,000 puts, with the floor (one fdatasync + two round trips),
#                    the cluster floor (a majority of the nodes' syncs at once on this disk)
#                    and the bare put (the put's path with none of raftkv's code: p50/bare)
#
# Usage: scripts/stall-bench.sh BINARY [BINARY...]
#   RUNS=3 CASES="store-default clients-100" to choose; DATA=DIR for the nodes' directories
#   (the default is a temporary directory; the store cases need about 1 GB each);
#   SERVE_ARGS="--snapshot-growth-percent=50 ..." for every node's `raftkv serve`;
#   BASE_PORT=N for the nodes' ports (N to N+2; the default is the bench's).
# Each run's JSON line is kept in a file named at the end. Needs a release build.
set -euo pipefail
(($# > 0)) || { echo "usage: $0 BINARY [BINARY...]" >&2; exit 2; }
for binary in "$@"; do
    [[ -x $binary ]] || { echo "not an executable: $binary" >&2; exit 2; }
done
runs=${RUNS:-3}
cases=${CASES:-store-default store-4mb store-nosnap clients-100 single-client}
data=${DATA:-$(mktemp -d)}
results=$(mktemp --suffix=.jsonl)
node_args=() # the bench flags for the nodes it spawns: ports, serve arguments
[[ -n ${BASE_PORT:-} ]] && node_args+=("--base-port=$BASE_PORT")
for argument in ${SERVE_ARGS:-}; do
    node_args+=("--serve-arg=$argument")
done

arguments() { # arguments CASE: the bench flags of a case
    local store="--clients 50 --value-size 100 --ops 2000000 --keys 2000000"
    case $1 in
        store-default) echo "$store" ;;
        store-4mb) echo "$store --snapshot-bytes 4000000" ;;
        store-nosnap) echo "$store --snapshot-bytes 1000000000000" ;;
        clients-100) echo "--clients 100 --value-size 256 --ops 300000 --floor" ;;
        single-client) echo "--clients 1 --ops 10000 --floor" ;;
        *) echo "unknown case: $1" >&2; exit 2 ;;
    esac
}

for round in $(seq 1 "$runs"); do
    for name in $cases; do
        flags=$(arguments "$name")
        for binary in "$@"; do
            echo "round $round/$runs, $name, $binary (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
            dir="$data/$name-$round"
            # shellcheck disable=SC2086 # the flags are words
            line=$("$binary" bench --spawn-nodes 3 --json --data "$dir" $flags "${node_args[@]}" |
                tail -n 1)
            rm -rf "$dir"
            echo "{\"case\":\"$name\",\"binary\":\"$binary\",\"round\":$round,\"run\":$line}" >>"$results"
        done
    done
done

# Medians per case and binary, read from the JSON lines (one object per line, no nesting in the
# fields read, so sed suffices and the script needs nothing beyond coreutils).
field() { # field NAME LINE: a number field of the bench's object, its last one (nothing if absent)
    sed -nE "s/.*\"$1\":([-0-9.e]+).*/\1/p" <<<"$2"
}
tail_ratio() { # p99 / p50 of a run
    awk -v p99="$(field p99_ms "$1")" -v p50="$(field p50_ms "$1")" \
        'BEGIN { if (p50 > 0) printf "%.2f\n", p99 / p50 }'
}
disk_tail_ratio() { # the disk's own fdatasync p99 / p50, measured by --floor before the run
    awk -v p99="$(field fdatasync_p99_ms "$1")" -v p50="$(field fdatasync_p50_ms "$1")" \
        'BEGIN { if (p50 > 0) printf "%.2f\n", p99 / p50 }'
}
peak_rss_mib() { # the largest peak RSS of the nodes, in MiB
    grep -oE '"peak_rss_bytes":[0-9]+' <<<"$1" | cut -d: -f2 | sort -n | tail -n 1 |
        awk '{ printf "%.0f\n", $1 / 1048576 }'
}
median() { # median FORMAT: of the numbers read, "-" if none
    sort -g | awk -v format="$1" '{ v[NR] = $1 } END { if (NR) printf format, v[int((NR + 1) / 2)]; else printf "-" }'
}

row='%-14s %-32s %9s %8s %8s %9s %8s %8s %10s %9s %10s %8s %8s %9s %9s\n'
# shellcheck disable=SC2059 # the format is the row's
printf "$row" case binary ops/s p50_ms p99_ms p99.9_ms max_ms p99/p50 disk_p99/50 p50/floor \
    p50/cfloor p50/bare leaders peak_MiB peak/snap
for name in $cases; do
    for binary in "$@"; do
        lines=$(grep -F "\"case\":\"$name\",\"binary\":\"$binary\"" "$results")
        column() { # column FORMAT COMMAND...: the median of a figure over the runs
            local format=$1
            shift
            while read -r line; do "$@" "$line"; done <<<"$lines" | median "$format"
        }
        # shellcheck disable=SC2059
        printf "$row" "$name" "$binary" "$(column %.0f field ops_per_sec)" \
            "$(column %.3f field p50_ms)" "$(column %.3f field p99_ms)" \
            "$(column %.3f field p999_ms)" "$(column %.1f field max_ms)" \
            "$(column %.2f tail_ratio)" "$(column %.2f disk_tail_ratio)" \
            "$(column %.2f field p50_over_floor)" \
            "$(column %.2f field p50_over_cluster_floor)" \
            "$(column %.2f field p50_over_bare_put)" \
            "$(column %.0f field leader_changes)" "$(column %.0f peak_rss_mib)" \
            "$(column %.2f field peak_rss_over_snapshot)"
    done
done
echo "medians of $runs runs; every run's JSON: $results"
