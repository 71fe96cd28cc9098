# Sourced by the redis-*.sh scripts: finds the raftkv binary, and starts and stops a local
# three-node raftkv cluster whose nodes also serve Redis clients, in the clear or with TLS.
#   start_raftkv_cluster BINARY DIR BASE_PORT REDIS_BASE_PORT [tls]
# leaves the nodes' pids in RAFTKV_PIDS and waits until node 1's Redis port answers a write.
# With tls, it makes the certificates in DIR/certs, and REDIS_TLS holds the arguments that
# redis-cli and redis-benchmark need to connect (empty in the clear). SERVE_ARGS, if set, adds
# its words to every node's `raftkv serve` (e.g. SERVE_ARGS=--read-lease).

RAFTKV_PIDS=()
REDIS_TLS=()

# raftkv_binary [PATH]: prints PATH, or builds the release binary and prints its path.
raftkv_binary() {
    if [[ -n $1 ]]; then
        echo "$1"
    else
        cargo build --release -p raftkv --quiet >&2
        echo "${CARGO_TARGET_DIR:-target}/release/raftkv"
    fi
}

# redis_tools_speak_tls: whether redis-cli and redis-benchmark were built with TLS.
redis_tools_speak_tls() {
    [[ $(redis-cli --help 2>&1) == *--tls* && $(redis-benchmark --help 2>&1) == *--tls* ]]
}

start_raftkv_cluster() {
    local binary=$1 dir=$2 base=$3 redis_base=$4 mode=${5:-plain}
    local peers="1=127.0.0.1:${base},2=127.0.0.1:$((base + 1)),3=127.0.0.1:$((base + 2))"
    local certs=$dir/certs extra=()
    read -ra extra <<<"${SERVE_ARGS:-}"
    mkdir -p "$dir"
    REDIS_TLS=()
    if [[ $mode == tls ]]; then
        "$binary" certs init "$certs" --nodes 1,2,3 --hosts localhost,127.0.0.1 >/dev/null
        REDIS_TLS=(--tls --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key")
    fi
    for id in 1 2 3; do
        local tls_flags=()
        if [[ $mode == tls ]]; then
            tls_flags=(--tls-ca "$certs/ca.crt" --tls-cert "$certs/node-$id.crt" --tls-key "$certs/node-$id.key")
        fi
        "$binary" serve --id "$id" --peers "$peers" --data "$dir/n$id" "${tls_flags[@]}" \
            --redis-listen "127.0.0.1:$((redis_base + id - 1))" "${extra[@]}" 2>"$dir/n$id.log" &
        RAFTKV_PIDS+=($!)
    done
    local deadline=$((SECONDS + 30))
    until redis-cli -p "$redis_base" "${REDIS_TLS[@]}" set raftkv:started yes 2>/dev/null | grep -q OK; do
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
    REDIS_TLS=()
}
