#!/usr/bin/env bash
# A cache inside a FastAPI app against the ceiling, same uvicorn (one worker, httptools, uvloop),
# same bytes (examples/fastapi's /users?skip=0&limit=18, ~1 KiB of JSON):
#   bare-asgi        an ASGI app that sends those bytes and nothing else (scripts/bench/bare_asgi_app.py)
#   larder-asgi      larder.asgi.CacheMiddleware added with app.add_middleware (a memory hit, but
#                    inside FastAPI's own middleware stack: Starlette's error middleware and
#                    FastAPI's run first on every request)
#   larder-outer     the same middleware wrapping the FastAPI app from outside (what uvicorn runs)
#   fastapi-cache2   @cache(expire=600) on the endpoint, InMemoryBackend
# Rounds alternate between the sides; medians reported, with larder-asgi / bare-asgi (issue 25's
# target: >= 0.8x), larder-outer / bare-asgi and larder-asgi / fastapi-cache2.
#
#   scripts/bench-asgi.sh           # ROUNDS=5 SECS=5 CONNS=50 override
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
ROUNDS="${ROUNDS:-5}"
SECS="${SECS:-5}"
CONNS="${CONNS:-50}"
. scripts/lib-http.sh

VENV=target/venv
"$VENV/bin/python" -c "import fastapi, uvicorn, httptools, fastapi_cache" 2>/dev/null ||
    "$VENV/bin/pip" install -q --disable-pip-version-check fastapi-cache2
VIRTUAL_ENV="$PWD/$VENV" "$VENV/bin/maturin" develop --release -q -m crates/larder-py/Cargo.toml
URL_PATH="/users?skip=0&limit=18"

declare -A PORT=([bare-asgi]=$(free_port) [larder-asgi]=$(free_port) [larder-outer]=$(free_port) [fastapi-cache2]=$(free_port))
declare -A APP=([bare-asgi]=bare_asgi_app:app [larder-asgi]=larder_asgi_app:app [larder-outer]=larder_asgi_app:outer [fastapi-cache2]=fastapi_cache2_app:app)
SIDES=(bare-asgi larder-outer larder-asgi fastapi-cache2)
for side in "${SIDES[@]}"; do
    (cd examples/fastapi && PYTHONPATH=../../scripts/bench exec "../../$VENV/bin/python" -m uvicorn \
        "${APP[$side]}" --host 127.0.0.1 --port "${PORT[$side]}" --log-level warning --no-access-log \
        --http httptools --loop uvloop) >"$DIR/$side.log" 2>&1 & PIDS+=($!)
done
for side in "${SIDES[@]}"; do wait_port "${PORT[$side]}"; done

rps() {
    curl -s -o /dev/null "$1"; curl -s -o /dev/null "$1"
    wrk -t1 -c"$CONNS" -d"${SECS}s" "$1" | awk '/Requests\/sec/ {print $2}'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A RPS
for _ in $(seq "$ROUNDS"); do
    for side in "${SIDES[@]}"; do
        RPS[$side]+="$(rps "http://127.0.0.1:${PORT[$side]}$URL_PATH") "
    done
done
printf '# wrk -t1 -c%s -d%ss, median of %s alternating rounds; bytes: %s\n' "$CONNS" "$SECS" "$ROUNDS" \
    "$(curl -s "http://127.0.0.1:${PORT[bare-asgi]}$URL_PATH" | wc -c) / $(curl -s "http://127.0.0.1:${PORT[larder-asgi]}$URL_PATH" | wc -c)"
declare -A M
for side in "${SIDES[@]}"; do
    M[$side]=$(printf '%s\n' ${RPS[$side]} | median)
    printf '%-16s %10s req/s   [%s]\n' "$side" "${M[$side]}" "${RPS[$side]}"
done
python3 -c "b, o, a, f = ${M[bare-asgi]}, ${M[larder-outer]}, ${M[larder-asgi]}, ${M[fastapi-cache2]}; print(f'larder-outer / bare-asgi: {o/b:.2f}x   larder-asgi / bare-asgi: {a/b:.2f}x   larder-asgi / fastapi-cache2: {a/f:.1f}x')"
