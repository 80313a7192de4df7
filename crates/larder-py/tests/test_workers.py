"""uvicorn --workers 4 with one Redis: a write in one worker is read by the others, a delete in
one reaches the others' memory tiers (the backplane), and with Redis killed every request is
still answered."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from conftest import free_port, start_redis, until, wait_port

HERE = Path(__file__).resolve().parent


def call(port, method, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def fresh_call(port, method, path):
    """On a new connection each time, so the kernel spreads requests over the workers."""
    return call(port, method, path)


def start_workers(workers, **env):
    """`uvicorn --workers N` serving workers_app on a free port, once at least two workers
    answer: (port, process)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "workers_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
        cwd=HERE, env=dict(os.environ, **env),
    )
    try:
        wait_port(port, "uvicorn", limit=30)
        pids = set()
        assert until(lambda: pids.add(fresh_call(port, "GET", "/get/none")["pid"]) or len(pids) >= 2)
    except BaseException:
        server.terminate()
        server.wait(timeout=30)
        raise
    return port, server


def test_four_uvicorn_workers_share_one_cache_through_redis():
    redis_url, redis = start_redis()
    port, server = start_workers(4, LARDER_URL=redis_url)
    try:

        # A value written through one worker is read through all of them.
        fresh_call(port, "PUT", "/set/color/blue")
        seen = {}

        def everyone_sees_blue():
            r = fresh_call(port, "GET", "/get/color")
            seen[r["pid"]] = r["value"]
            return len(seen) >= 2 and all(v == "blue" for v in seen.values())

        assert until(everyone_sees_blue), seen

        # A delete through one worker reaches the others' memory tiers.
        fresh_call(port, "DELETE", "/delete/color")
        gone = {}

        def everyone_sees_none():
            r = fresh_call(port, "GET", "/get/color")
            gone[r["pid"]] = r["value"]
            return len(gone) >= 2 and all(v is None for v in gone.values())

        assert until(everyone_sees_none), gone

        # Redis down: every request is still answered.
        redis.kill()
        redis.wait()
        for i in range(40):
            assert "computed_by" in fresh_call(port, "GET", f"/fetch/k{i % 5}")
    finally:
        server.terminate()
        server.wait(timeout=20)
        if redis.poll() is None:
            redis.kill()



def test_a_distributed_lock_makes_one_call_across_two_workers(tmp_path):
    """`@cached(distributed_lock=)` and `cache_response(distributed_lock=)` on the app's one
    default cache (Redis): 50 concurrent cold requests spread over two uvicorn workers make one
    call, counted by the lines the calls append to a file."""
    from concurrent.futures import ThreadPoolExecutor

    redis_url, redis = start_redis()
    calls = tmp_path / "calls"
    calls.write_text("")
    port, server = start_workers(2, LARDER_URL=redis_url, CALLS_FILE=str(calls))
    try:
        for path in ("/report/q3", "/page/home"):
            with ThreadPoolExecutor(50) as pool:
                answers = list(pool.map(lambda _: fresh_call(port, "GET", path), range(50)))
            assert len({json.dumps(a, sort_keys=True) for a in answers}) == 1, answers[:3]
            lines = [l for l in calls.read_text().splitlines() if l.startswith(path.split("/")[1])]
            assert len(lines) == 1, lines
    finally:
        server.terminate()
        server.wait(timeout=30)
        redis.kill()
        redis.wait()
