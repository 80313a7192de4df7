"""larder.asgi.CacheMiddleware under `uvicorn --workers 2` with one Redis: a response one worker
stored is a hit in the other (each process has its own memory tier; the entries live in Redis)."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import free_port, start_redis, wait_port

HERE = Path(__file__).resolve().parent


def fetch(port, path):
    # A new connection each time, so the kernel spreads requests over the workers.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return resp.headers["x-worker"], resp.headers["x-cache"], json.loads(resp.read())


def test_two_workers_share_stored_responses_through_redis():
    redis_url, redis = start_redis()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "asgi_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2", "--log-level", "warning"],
        cwd=HERE, env=dict(os.environ, LARDER_URL=redis_url),
    )
    try:
        wait_port(port, "uvicorn", limit=30)
        first_worker, status, body = fetch(port, "/items/7")
        assert status == "MISS"
        # The fill writes to Redis once the body is complete, just after the client has it.
        time.sleep(0.3)
        served_by, deadline = {first_worker}, time.time() + 20
        while len(served_by) < 2 and time.time() < deadline:
            worker, status, other = fetch(port, "/items/7")
            served_by.add(worker)
            assert status == "HIT" and other == body, "every worker answers with the stored response"
        assert len(served_by) == 2, "the kernel never handed a connection to the second worker"
    finally:
        server.terminate()
        server.wait(timeout=10)
        redis.kill()
        redis.wait()
