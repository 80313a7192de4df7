#!/usr/bin/env bash
# GET and SET throughput with 1 KiB values through larder's Memcached store, beside a raw
# text-protocol client loop (one connection per task) against the same server in the same run.
# Starts its own memcached on a free loopback port.
#
#   scripts/bench-memcached.sh        # 5 s per measurement; LARDER_BENCH_SECS, LARDER_BENCH_POOL
set -euo pipefail
cd "$(dirname "$0")/.."

command -v memcached >/dev/null || {
    echo "memcached is needed (apt-get install memcached)" >&2
    exit 1
}
SECS="${LARDER_BENCH_SECS:-5}"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
USER_FLAG=()
[ "$(id -u)" = 0 ] && USER_FLAG=(-u root)
memcached -l 127.0.0.1 -p "$PORT" -U 0 -m 256 -t 2 -c 4096 "${USER_FLAG[@]}" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

cargo bench -p larder-memcached --bench throughput --no-run
echo "# larder MemcachedStore and a raw client loop (ops/s)"
LARDER_BENCH_URL="memcached://127.0.0.1:$PORT" LARDER_BENCH_SECS="$SECS" \
    cargo bench -p larder-memcached --bench throughput 2>/dev/null
