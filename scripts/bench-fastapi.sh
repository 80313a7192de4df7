#!/usr/bin/env bash
# Cached requests/s and p99 in front of the same plain FastAPI origin (examples/fastapi/app.py
# under uvicorn, one worker; /users?skip=0&limit=18 is ~1 KiB of JSON with no Cache-Control),
# with the same rule on every side (cache 200s for 600 s):
#   larder-proxy      --config with one rule: path /users, ttl 600s
#   nginx proxy_cache proxy_cache_valid 200 10m (and proxy_cache_lock, upstream keepalive)
#   fastapi-cache2    @cache(expire=600) inside the app (InMemoryBackend), same uvicorn
#   larder-asgi       larder.asgi.CacheMiddleware inside the app (rule: path /users, ttl 600s)
#   cache_response    larder.asgi.cache_response(ttl="600s") on the endpoint
#   the origin itself, uncached, for scale
# Rounds alternate between the sides so drift on this shared machine hits all alike; the median
# of the rounds is reported. Access logs are off on every side. Everything on free 127.0.0.1 ports.
#
#   scripts/bench-fastapi.sh        # ROUNDS=3 SECS=10 CONNS=50 override
set -euo pipefail
cd "$(dirname "$0")/.."

for bin in wrk nginx python3; do
    command -v "$bin" >/dev/null || { echo "$bin is needed (apt-get install wrk nginx-light)" >&2; exit 1; }
done
ROUNDS="${ROUNDS:-3}"
SECS="${SECS:-10}"
CONNS="${CONNS:-50}"
. scripts/lib-http.sh

VENV=target/venv
"$VENV/bin/python" -c "import fastapi, uvicorn, httptools, fastapi_cache" 2>/dev/null || {
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r examples/fastapi/requirements.txt \
        -r crates/larder-py/requirements-test.txt fastapi-cache2
}
cargo build --release -q -p larder-proxy
# larder for Python, a release build into the same venv (scripts/test.sh puts a debug one back).
VIRTUAL_ENV="$PWD/$VENV" "$VENV/bin/maturin" develop --release -q -m crates/larder-py/Cargo.toml
URL_PATH="/users?skip=0&limit=18"

P_ORIGIN=$(free_port); P_FC2=$(free_port); P_PROXY=$(free_port); P_NGINX=$(free_port)
P_ASGI=$(free_port); P_DECO=$(free_port)
(cd examples/fastapi && exec "../../$VENV/bin/python" -m uvicorn app:app --host 127.0.0.1 \
    --port "$P_ORIGIN" --log-level warning --no-access-log --http httptools --loop uvloop) >"$DIR/origin.log" 2>&1 & PIDS+=($!)
(cd examples/fastapi && PYTHONPATH=../../scripts/bench exec "../../$VENV/bin/python" -m uvicorn \
    fastapi_cache2_app:app --host 127.0.0.1 --port "$P_FC2" --log-level warning --no-access-log --http httptools --loop uvloop) \
    >"$DIR/fc2.log" 2>&1 & PIDS+=($!)
for side in "app $P_ASGI" "decorated $P_DECO"; do
    set -- $side
    (cd examples/fastapi && PYTHONPATH=../../scripts/bench exec "../../$VENV/bin/python" -m uvicorn \
        "larder_asgi_app:$1" --host 127.0.0.1 --port "$2" --log-level warning --no-access-log --http httptools --loop uvloop) \
        >"$DIR/larder-$1.log" 2>&1 & PIDS+=($!)
done
cat >"$DIR/larder.toml" <<CONF
[[rule]]
path = "/users"
ttl = "600s"
CONF
target/release/larder-proxy --upstream "http://127.0.0.1:$P_ORIGIN" --listen "127.0.0.1:$P_PROXY" \
    --admin-listen off --access-log off --config "$DIR/larder.toml" >"$DIR/proxy.log" 2>&1 & PIDS+=($!)
start_nginx "$P_NGINX" "$P_ORIGIN" 1024 "proxy_cache_valid 200 10m;"
wait_port "$P_ORIGIN"; wait_port "$P_FC2"; wait_port "$P_PROXY"; wait_port "$P_NGINX"
wait_port "$P_ASGI"; wait_port "$P_DECO"

# "requests/s p99_ms" for URL, warmed first (the first request fills the cache).
measure() {
    curl -s -o /dev/null "$1"; curl -s -o /dev/null "$1"
    wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" | awk '
        /Requests\/sec/ {rps=$2}
        $1 == "99%" { v=$2; ms=v+0; if (v ~ /us$/) ms=ms/1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) ms=ms*1000; p99=ms }
        END { printf "%s %.2f\n", rps, p99 }'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A RPS P99
SIDES=(larder-proxy nginx larder-asgi cache_response fastapi-cache2 origin)
declare -A URL=(
    [larder-proxy]="http://127.0.0.1:$P_PROXY$URL_PATH"
    [nginx]="http://127.0.0.1:$P_NGINX$URL_PATH"
    [fastapi-cache2]="http://127.0.0.1:$P_FC2$URL_PATH"
    [larder-asgi]="http://127.0.0.1:$P_ASGI$URL_PATH"
    [cache_response]="http://127.0.0.1:$P_DECO$URL_PATH"
    [origin]="http://127.0.0.1:$P_ORIGIN$URL_PATH"
)
curl -s -o /dev/null "${URL[larder-proxy]}"; curl -s -o /dev/null "${URL[nginx]}"
curl -s -o /dev/null "${URL[larder-asgi]}"
echo "# bytes per response: $(curl -s "${URL[origin]}" | wc -c); cache headers: larder $(curl -s -D - -o /dev/null "${URL[larder-proxy]}" | grep -i '^x-cache' | tr -d '\r'), nginx $(curl -s -D - -o /dev/null "${URL[nginx]}" | grep -i '^x-cache' | tr -d '\r'), larder-asgi $(curl -s -D - -o /dev/null "${URL[larder-asgi]}" | grep -i '^x-cache' | tr -d '\r')"
for _ in $(seq "$ROUNDS"); do
    for side in "${SIDES[@]}"; do
        read -r rps p99 < <(measure "${URL[$side]}")
        RPS[$side]+="$rps "; P99[$side]+="$p99 "
    done
done
printf '# wrk -t1 -c%s -d%ss, median of %s rounds\n' "$CONNS" "$SECS" "$ROUNDS"
printf '%-16s %12s %10s   %s\n' side "req/s" "p99 ms" "rounds (req/s | p99 ms)"
for side in "${SIDES[@]}"; do
    r=$(printf '%s\n' ${RPS[$side]} | median); p=$(printf '%s\n' ${P99[$side]} | median)
    printf '%-16s %12s %10s   [%s| %s]\n' "$side" "$r" "$p" "${RPS[$side]}" "${P99[$side]}"
    declare "M_${side//-/_}=$r"
done
python3 - "$M_larder_proxy" "$M_nginx" "$M_fastapi_cache2" "$M_larder_asgi" "$M_cache_response" <<'PY'
import sys
l, n, f, a, d = map(float, sys.argv[1:])
print(f"larder-proxy / nginx proxy_cache: {l/n:.2f}x   larder-proxy / fastapi-cache2: {l/f:.1f}x")
print(f"larder CacheMiddleware / fastapi-cache2: {a/f:.1f}x   larder cache_response / fastapi-cache2: {d/f:.1f}x")
PY
