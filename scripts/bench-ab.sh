#!/usr/bin/env bash
# A hit path, pinned A/B: built at BASE (a commit) beside the working tree's, each in turn pinned
# to core 1 with wrk pinned to core 0, ROUNDS alternating rounds of `wrk -t1 -c32 -d${SECS}s` on
# one URL; the medians and after / before. WHAT=proxy (default): larder-proxy in front of the api
# example without its layer (which sends Cache-Control: public, max-age=60). WHAT=layer: the api
# example itself, its larder-http layer answering from memory.
#
#   scripts/bench-ab.sh 2fed6ad              # ROUNDS=5 SECS=8 URL=/users?skip=0&limit=20 override
#   WHAT=layer scripts/bench-ab.sh 2fed6ad
set -euo pipefail
cd "$(dirname "$0")/.."
BASE="${1:?the commit to compare against}"
ROUNDS="${ROUNDS:-5}"
SECS="${SECS:-8}"
URLPATH="${URL:-/users?skip=0&limit=20}"
WHAT="${WHAT:-proxy}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
. scripts/lib-http.sh

WORKTREE=target/ab-base
if [ ! -d "$WORKTREE" ]; then
    git worktree add --detach "$WORKTREE" "$BASE" >/dev/null
else
    git -C "$WORKTREE" checkout -q --detach "$BASE"
fi
# Two commands each: with `--example`, cargo builds only examples, not the proxy's binary.
(cd "$WORKTREE" && export CARGO_TARGET_DIR="$PWD/../ab-base-target" &&
    cargo build --release -q -p larder-proxy && cargo build --release -q -p larder-http --example api)
cargo build --release -q -p larder-proxy
cargo build --release -q -p larder-http --example api
if [ "$WHAT" = layer ]; then
    BEFORE=target/ab-base-target/release/examples/api
    AFTER=target/release/examples/api
else
    BEFORE=target/ab-base-target/release/larder-proxy
    AFTER=target/release/larder-proxy
fi

P_ORIGIN=$(free_port)
PORT=$P_ORIGIN LARDER_HTTP=off taskset -c 0 target/release/examples/api >"$DIR/origin.log" 2>&1 & PIDS+=($!)
wait_port "$P_ORIGIN"

round() { # round BINARY: requests/s of one pinned round
    local port pid rps
    port=$(free_port)
    if [ "$WHAT" = layer ]; then
        PORT=$port taskset -c 1 "$1" >"$DIR/layer.log" 2>&1 &
    else
        taskset -c 1 "$1" --upstream "http://127.0.0.1:$P_ORIGIN" --listen "127.0.0.1:$port" \
            --admin-listen off --access-log off >"$DIR/proxy.log" 2>&1 &
    fi
    pid=$!
    wait_port "$port"
    curl -s -o /dev/null "http://127.0.0.1:$port$URLPATH"; curl -s -o /dev/null "http://127.0.0.1:$port$URLPATH"
    rps=$(taskset -c 0 wrk -t1 -c32 -d"${SECS}s" "http://127.0.0.1:$port$URLPATH" | awk '/Requests\/sec/ {print $2}')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$rps"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
before=(); after=()
for _ in $(seq "$ROUNDS"); do before+=("$(round "$BEFORE")"); after+=("$(round "$AFTER")"); done
mb=$(printf '%s\n' "${before[@]}" | median); ma=$(printf '%s\n' "${after[@]}" | median)
echo "$WHAT hits on $URLPATH, pinned, $ROUNDS alternating rounds of wrk -t1 -c32 -d${SECS}s"
echo "before ($BASE): $mb req/s (${before[*]})"
echo "after (working tree): $ma req/s (${after[*]})"
python3 -c "print(f'after / before: {$ma/$mb:.2f}x')"
