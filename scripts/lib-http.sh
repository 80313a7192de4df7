# Sourced by the HTTP benchmarks (bench-http.sh, bench-slowloris.sh): free loopback ports, a temp
# directory and the processes started, stopped on exit, and nginx proxy_cache in front of an
# origin, configured once for both.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
DIR="$(mktemp -d)"
chmod 755 "$DIR"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.05; done; echo "nothing on :$1" >&2; exit 1; }

# start_nginx PORT ORIGIN_PORT [WORKER_CONNECTIONS] [EXTRA_HTTP_DIRECTIVES]: nginx with
# worker_processes auto, proxy_cache_lock on, upstream keepalive, no access log, X-Cache.
start_nginx() {
    local port=$1 origin=$2 conns=${3:-1024} extra=${4:-}
    mkdir -p "$DIR/nginx/cache" "$DIR/nginx/tmp"
    chmod -R 777 "$DIR/nginx"
    cat >"$DIR/nginx/nginx.conf" <<CONF
worker_processes auto;
worker_rlimit_nofile 20000;
error_log $DIR/nginx/error.log crit;
pid $DIR/nginx/nginx.pid;
events { worker_connections $conns; }
http {
    access_log off;
    $extra
    client_body_temp_path $DIR/nginx/tmp;
    proxy_temp_path $DIR/nginx/tmp;
    fastcgi_temp_path $DIR/nginx/tmp;
    uwsgi_temp_path $DIR/nginx/tmp;
    scgi_temp_path $DIR/nginx/tmp;
    proxy_cache_path $DIR/nginx/cache levels=1:2 keys_zone=larder_bench:10m max_size=256m inactive=10m;
    upstream origin { server 127.0.0.1:$origin; keepalive 32; }
    server {
        listen 127.0.0.1:$port;
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
CONF
    nginx -c "$DIR/nginx/nginx.conf" -g 'daemon off;' >"$DIR/nginx/stdout.log" 2>&1 & PIDS+=($!)
}
