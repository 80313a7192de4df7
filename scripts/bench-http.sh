#!/usr/bin/env bash
# HTTP cache hit throughput with wrk, each side beside its peer in the same run:
#   A. the api example with the larder-http layer (every request a hit) against the same app
#      without the layer (LARDER_HTTP=off), on the same URLs;
#   B. larder-proxy against nginx proxy_cache, both in front of the same origin (the api
#      example without its layer, which sends Cache-Control: public, max-age=60).
# Rounds alternate between the two sides so drift on this shared machine hits both alike; the
# median of the rounds is reported. Everything listens on free 127.0.0.1 ports.
#
#   scripts/bench-http.sh        # ROUNDS=3 SECS=8 CONNS=32 override
set -euo pipefail
cd "$(dirname "$0")/.."

for bin in wrk nginx; do
    command -v "$bin" >/dev/null || { echo "$bin is needed (apt-get install wrk nginx-light)" >&2; exit 1; }
done
ROUNDS="${ROUNDS:-3}"
SECS="${SECS:-8}"
CONNS="${CONNS:-32}"
. scripts/lib-http.sh

cargo build --release -q -p larder-http --example api
cargo build --release -q -p larder-proxy
API=target/release/examples/api
PROXY=target/release/larder-proxy

# wrk's requests/s for URL, warmed first (the first request fills the cache).
rps() {
    curl -s -o /dev/null "$1"; curl -s -o /dev/null "$1"
    wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" | awk '/Requests\/sec/ {print $2}'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
compare() { # compare NAME URL_A URL_B : prints both medians and A/B
    local a=() b=()
    for _ in $(seq "$ROUNDS"); do a+=("$(rps "$2")"); b+=("$(rps "$3")"); done
    local ma mb
    ma=$(printf '%s\n' "${a[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
    printf '%-34s %12s %12s %8s   rounds: [%s] vs [%s]\n' "$1" "$ma" "$mb" \
        "$(python3 -c "print(f'{$ma/$mb:.2f}x')")" "${a[*]}" "${b[*]}"
}

echo "# A. api example: larder-http hits vs the same app without the layer (requests/s, median of $ROUNDS x ${SECS}s, wrk -t1 -c$CONNS)"
P_CACHED=$(free_port); P_PLAIN=$(free_port)
PORT=$P_CACHED $API >"$DIR/cached.log" 2>&1 & PIDS+=($!)
PORT=$P_PLAIN LARDER_HTTP=off $API >"$DIR/plain.log" 2>&1 & PIDS+=($!)
wait_port "$P_CACHED"; wait_port "$P_PLAIN"
printf '%-34s %12s %12s %8s\n' "url" "layer (hit)" "no layer" "ratio"
for path in "/users?skip=0&limit=20" "/report" "/page"; do
    compare "$path" "http://127.0.0.1:$P_CACHED$path" "http://127.0.0.1:$P_PLAIN$path"
done
curl -s -D - -o /dev/null "http://127.0.0.1:$P_CACHED/users?skip=0&limit=20" | grep -i '^x-cache'

echo
echo "# B. larder-proxy vs nginx proxy_cache, same origin (requests/s, median of $ROUNDS x ${SECS}s, wrk -t1 -c$CONNS)"
P_ORIGIN=$(free_port); P_PROXY=$(free_port); P_NGINX=$(free_port)
PORT=$P_ORIGIN LARDER_HTTP=off $API >"$DIR/origin.log" 2>&1 & PIDS+=($!)
wait_port "$P_ORIGIN"
$PROXY --upstream "http://127.0.0.1:$P_ORIGIN" --listen "127.0.0.1:$P_PROXY" --admin-listen off --access-log off >"$DIR/proxy.log" 2>&1 & PIDS+=($!)
start_nginx "$P_NGINX" "$P_ORIGIN"
wait_port "$P_PROXY"; wait_port "$P_NGINX"
printf '%-34s %12s %12s %8s\n' "url" "proxy" "nginx" "ratio"
for path in "/users?skip=0&limit=20" "/page"; do
    compare "$path" "http://127.0.0.1:$P_PROXY$path" "http://127.0.0.1:$P_NGINX$path"
done
for p in "$P_PROXY" "$P_NGINX"; do
    curl -s -D - -o /dev/null "http://127.0.0.1:$p/users?skip=0&limit=20" | grep -i '^x-cache' | sed "s/^/:$p /"
done
