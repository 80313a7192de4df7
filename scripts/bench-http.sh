#!/usr/bin/env bash
# HTTP cache hit throughput with wrk, each side beside its peer in the same run:
#   A. the api example with the larder-http layer (every request a hit) against the same app
#      without the layer (LARDER_HTTP=off), on the same URLs;
#   B. the proxy example against nginx proxy_cache, both in front of the same origin (the api
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
DIR="$(mktemp -d)"
chmod 755 "$DIR"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.05; done; echo "nothing on :$1" >&2; exit 1; }

cargo build --release -q -p larder-http --example api --example proxy
API=target/release/examples/api
PROXY=target/release/examples/proxy

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
echo "# B. proxy example vs nginx proxy_cache, same origin (requests/s, median of $ROUNDS x ${SECS}s, wrk -t1 -c$CONNS)"
P_ORIGIN=$(free_port); P_PROXY=$(free_port); P_NGINX=$(free_port)
PORT=$P_ORIGIN LARDER_HTTP=off $API >"$DIR/origin.log" 2>&1 & PIDS+=($!)
wait_port "$P_ORIGIN"
$PROXY --upstream "http://127.0.0.1:$P_ORIGIN" --listen "127.0.0.1:$P_PROXY" >"$DIR/proxy.log" 2>&1 & PIDS+=($!)
mkdir -p "$DIR/nginx/cache" "$DIR/nginx/tmp"
chmod -R 777 "$DIR/nginx"
cat >"$DIR/nginx/nginx.conf" <<EOF
worker_processes auto;
error_log $DIR/nginx/error.log warn;
pid $DIR/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $DIR/nginx/tmp;
    proxy_temp_path $DIR/nginx/tmp;
    fastcgi_temp_path $DIR/nginx/tmp;
    uwsgi_temp_path $DIR/nginx/tmp;
    scgi_temp_path $DIR/nginx/tmp;
    proxy_cache_path $DIR/nginx/cache levels=1:2 keys_zone=larder_bench:10m max_size=256m inactive=10m;
    upstream origin { server 127.0.0.1:$P_ORIGIN; keepalive 32; }
    server {
        listen 127.0.0.1:$P_NGINX;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache larder_bench;
            proxy_cache_lock on;
            add_header X-Cache \$upstream_cache_status;
        }
    }
}
EOF
nginx -c "$DIR/nginx/nginx.conf" -g 'daemon off;' >"$DIR/nginx/stdout.log" 2>&1 & PIDS+=($!)
wait_port "$P_PROXY"; wait_port "$P_NGINX"
printf '%-34s %12s %12s %8s\n' "url" "proxy" "nginx" "ratio"
for path in "/users?skip=0&limit=20" "/page"; do
    compare "$path" "http://127.0.0.1:$P_PROXY$path" "http://127.0.0.1:$P_NGINX$path"
done
for p in "$P_PROXY" "$P_NGINX"; do
    curl -s -D - -o /dev/null "http://127.0.0.1:$p/users?skip=0&limit=20" | grep -i '^x-cache' | sed "s/^/:$p /"
done
