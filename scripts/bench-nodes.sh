# Helpers for the benchmark scripts that run their own three nodes on loopback (sourced, not
# run): checking the binaries, the nodes' addresses, starting and stopping nodes, polling, and
# medians, a node's peak memory. Usage, after `set -euo pipefail`:
#
#   source "$(dirname "$0")/bench-nodes.sh"
#   check_binaries "$@"          # usage error (exit 2) unless each is an executable
#   bench_nodes_on PORT          # nodes 1..3 on PORT..PORT+2: sets $peers and $cluster
#   bench_data_dir               # $data: DATA, or a temporary directory removed at exit
#
# Every node started is stopped at exit.

check_binaries() { # check_binaries BINARY...: exits 2 without any, or if one cannot run
    (($# > 0)) || { echo "usage: $0 BINARY [BINARY...]" >&2; exit 2; }
    local binary
    for binary in "$@"; do
        [[ -x $binary ]] || { echo "not an executable: $binary" >&2; exit 2; }
    done
}

bench_nodes_on() { # bench_nodes_on PORT
    local port=$1
    peers="1=127.0.0.1:$port,2=127.0.0.1:$((port + 1)),3=127.0.0.1:$((port + 2))"
    cluster="127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
}

pids=()
temporary_data=""
bench_cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    if [[ -n $temporary_data ]]; then
        # The nodes hold their directories until they are gone.
        local pid
        for pid in "${pids[@]}"; do
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        done
        rm -rf "$temporary_data"
    fi
}
trap bench_cleanup EXIT

bench_data_dir() {
    if [[ -n ${DATA:-} ]]; then
        data=$DATA
    else
        temporary_data=$(mktemp -d)
        data=$temporary_data
    fi
}

start() { # start BINARY DIR ID [ARG...]: starts node ID on DIR/nID, logging to DIR/nID.log;
    # its pid in $started
    local binary=$1 dir=$2 id=$3
    shift 3
    "$binary" serve --id "$id" --peers "$peers" --data "$dir/n$id" "$@" >>"$dir/n$id.log" 2>&1 &
    started=$!
    pids+=("$started")
}

stop() { # stop PID...: until they are gone (a data directory stays locked until then)
    kill "$@" 2>/dev/null || true
    local pid
    for pid in "$@"; do
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    done
}

until_true() { # until_true SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@"; do
        ((SECONDS < deadline)) || { echo "timed out waiting for $what" >&2; exit 1; }
        sleep 0.1
    done
}

has_leader() { "$1" status --cluster "$cluster" >/dev/null 2>&1; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

median_of() { # median_of RESULTS BINARY COLUMN: the median of COLUMN of BINARY's lines
    awk -v b="$2" -v c="$3" '$1 == b { print $c }' "$1" | median
}

peak_rss() { awk '/^VmHWM/ { print $2 * 1024 }' "/proc/$1/status"; } # peak_rss PID: bytes
