#!/usr/bin/env bash
# GET and SET throughput with 1 KiB values through larder's Redis store, beside redis-benchmark
# against the same server in the same run. Starts its own redis-server on a free loopback port.
#
#   scripts/bench-redis.sh            # 5 s per measurement; LARDER_BENCH_SECS overrides
set -euo pipefail
cd "$(dirname "$0")/.."

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "redis-server and redis-benchmark are needed (apt-get install redis-server redis-tools)" >&2
    exit 1
}
SECS="${LARDER_BENCH_SECS:-5}"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
DIR="$(mktemp -d)"
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" >"$DIR/log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

cargo bench -p larder-redis --bench throughput --no-run
echo "# redis-benchmark -c 50 -d 1024 (requests/s)"
# Enough requests for about SECS seconds at ~100k/s.
N=$(python3 -c "print(int($SECS * 100000))")
for P in 1 16; do
    redis-benchmark -h 127.0.0.1 -p "$PORT" -t set,get -c 50 -d 1024 -n "$N" -P "$P" --csv \
        | sed "s/^/P=$P,/"
done
echo "# larder RedisStore and remote-only Cache (ops/s)"
LARDER_BENCH_URL="redis://127.0.0.1:$PORT" LARDER_BENCH_SECS="$SECS" \
    cargo bench -p larder-redis --bench throughput 2>/dev/null
