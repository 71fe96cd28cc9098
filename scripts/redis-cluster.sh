# Sourced by the redis-*.sh scripts: finds the raftkv binary, and starts and stops a local
# three-node raftkv cluster in the clear whose nodes also serve Redis clients.
#   start_raftkv_cluster BINARY DIR BASE_PORT REDIS_BASE_PORT
# leaves the nodes' pids in RAFTKV_PIDS and waits until node 1's Redis port answers a write.

RAFTKV_PIDS=()

# raftkv_binary [PATH]: prints PATH, or builds the release binary and prints its path.
raftkv_binary() {
    if [[ -n $1 ]]; then
        echo "$1"
    else
        cargo build --release -p raftkv --quiet >&2
        echo target/release/raftkv
    fi
}

start_raftkv_cluster() {
    local binary=$1 dir=$2 base=$3 redis_base=$4
    local peers="1=127.0.0.1:${base},2=127.0.0.1:$((base + 1)),3=127.0.0.1:$((base + 2))"
    for id in 1 2 3; do
        "$binary" serve --id "$id" --peers "$peers" --data "$dir/n$id" \
            --redis-listen "127.0.0.1:$((redis_base + id - 1))" 2>"$dir/n$id.log" &
        RAFTKV_PIDS+=($!)
    done
    local deadline=$((SECONDS + 30))
    until redis-cli -p "$redis_base" set raftkv:started yes 2>/dev/null | grep -q OK; do
        if ((SECONDS > deadline)); then
            echo "the raftkv cluster did not answer within 30 s; logs in $dir" >&2
            return 1
        fi
        sleep 0.2
    done
}

stop_raftkv_cluster() {
    local pid
    for pid in "${RAFTKV_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${RAFTKV_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    RAFTKV_PIDS=()
}
