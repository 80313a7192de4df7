"""Across processes: four Python processes sharing one redis-server, each with 250 concurrent
coroutines on one cold key, run the factory once with `distributed_lock`; and the ported
examples run."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

WORKER = textwrap.dedent(
    """
    import asyncio, os, sys
    import larder

    cache = larder.Cache.from_url(sys.argv[1], namespace="processes")

    async def main():
        async def factory():
            # Count runs in Redis-independent space: a file per run.
            open(os.path.join(sys.argv[2], f"run-{os.getpid()}-{id(factory)}"), "w").close()
            await asyncio.sleep(0.5)
            return {"shared": True}

        results = await asyncio.gather(*[
            cache.get_or_fetch("cold", factory, ttl=60, distributed_lock=10)
            for _ in range(250)
        ])
        assert all(r == {"shared": True} for r in results)

    asyncio.run(main())
    """
)


def test_four_processes_on_one_redis_run_the_factory_once(redis_url, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [
        subprocess.Popen([sys.executable, str(script), redis_url, str(tmp_path)])
        for _ in range(4)
    ]
    for p in procs:
        assert p.wait(timeout=60) == 0
    runs = [f for f in os.listdir(tmp_path) if f.startswith("run-")]
    assert len(runs) == 1, runs


def test_the_ported_examples_run():
    fib = subprocess.run(
        [sys.executable, str(ROOT / "examples/python/fibonacci.py"), "100"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert "354224848179261915075: 101 calls" in fib.stdout
    weather = subprocess.run(
        [sys.executable, str(ROOT / "examples/python/weather.py")],
        capture_output=True, text=True, timeout=60, check=True,
        env={k: v for k, v in os.environ.items() if k != "LARDER_URL"},
    )
    assert weather.stdout.count("API calls so far: 1") == 3
