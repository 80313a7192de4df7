"""Per-call cost of a cache hit from async code, larder beside the use case's cachetools + Task
trick and a bare dict, in one run. Each number is the best of ROUNDS rounds of N awaited hits.

    target/venv/bin/python crates/larder-py/bench/hit.py      # N=200000 ROUNDS=5 override
"""

import asyncio
import os
import time

import cachetools

import larder

N = int(os.environ.get("N", "200000"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))


async def expensive(key):
    await asyncio.sleep(0)
    return {"key": key, "value": True}


class ResourceCache(cachetools.TTLCache):
    """The first use case's answer: __missing__ stores an asyncio.Task."""

    def __missing__(self, key):
        task = asyncio.ensure_future(expensive(key))
        self[key] = task
        return task


async def main():
    cache = larder.Cache.from_url("memory://", ttl="5m")
    await cache.get_or_fetch("k", lambda: expensive("k"))
    tasks = ResourceCache(1024, 300)
    await tasks["k"]
    plain = {"k": {"key": "k", "value": True}}

    async def bare_dict():
        for _ in range(N):
            plain.get("k")

    async def cachetools_task():
        for _ in range(N):
            await tasks["k"]

    async def larder_get():
        for _ in range(N):
            await cache.get("k")

    async def larder_get_or_fetch():
        for _ in range(N):
            await cache.get_or_fetch("k", expensive)

    sides = {
        "dict.get (no await)": bare_dict,
        "cachetools TTLCache + Task": cachetools_task,
        "larder await cache.get": larder_get,
        "larder await cache.get_or_fetch": larder_get_or_fetch,
    }
    best = {name: float("inf") for name in sides}
    for _ in range(ROUNDS):
        for name, run in sides.items():
            start = time.perf_counter()
            await run()
            best[name] = min(best[name], (time.perf_counter() - start) / N)
    for name, secs in best.items():
        print(f"{name:34s} {secs * 1e6:8.3f} µs per hit")


asyncio.run(main())
