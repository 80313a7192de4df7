"""A cache hit through each library's own async decorator, per call, in one run: larder's
@cached (async def, and def called from async code) and `await cache.get` beside aiocache, cashews, fastapi-cache2, cachebox, moka-py, theine and the use case's
cachetools + Task trick (and a bare dict.get for scale). Best of ROUNDS rounds of N awaited hits
of one key.

    target/venv/bin/pip install aiocache cashews fastapi-cache2 cachebox moka-py theine cachetools
    target/venv/bin/python crates/larder-py/bench/decorators.py     # N=100000 ROUNDS=5
"""

import asyncio
import os
import time

N = int(os.environ.get("N", "100000"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))


async def work(city):
    return {"city": city, "temp": 21.5}


def sides():
    out = {}

    import larder

    larder.set_default_cache(larder.Cache.from_url("memory://"))

    @larder.cached(ttl="1h")
    async def with_larder(city):
        return await work(city)

    out["larder @cached"] = with_larder

    @larder.cached(ttl="1h")
    def with_larder_sync(city):
        return {"city": city, "temp": 21.5}

    # A def called from async code: the same loop, no await on the hit.
    async def call_sync(city):
        return with_larder_sync(city)

    out["larder @cached (def)"] = call_sync

    plain_cache = larder.Cache.from_url("memory://", ttl="1h")
    plain_cache.set_sync("weather:Lisbon", {"city": "Lisbon", "temp": 21.5})

    async def with_get(city):
        return await plain_cache.get(f"weather:{city}")

    out["larder await cache.get"] = with_get

    try:
        from aiocache import cached as aiocache_cached

        @aiocache_cached(ttl=3600)
        async def with_aiocache(city):
            return await work(city)

        out["aiocache @cached"] = with_aiocache
    except Exception as e:  # noqa: BLE001
        print("aiocache skipped:", e)

    try:
        from cashews import cache as cashews_cache

        cashews_cache.setup("mem://")

        @cashews_cache(ttl="1h")
        async def with_cashews(city):
            return await work(city)

        out["cashews @cache"] = with_cashews
    except Exception as e:  # noqa: BLE001
        print("cashews skipped:", e)

    try:
        from fastapi_cache import FastAPICache
        from fastapi_cache.backends.inmemory import InMemoryBackend
        from fastapi_cache.decorator import cache as fastapi_cache

        FastAPICache.init(InMemoryBackend(), prefix="bench")

        # Its decorator outside a request (no Request argument): the key builder, the backend
        # and the coder, as an endpoint's hit pays them, without the HTTP part.
        @fastapi_cache(expire=3600)
        async def with_fastapi_cache(city):
            return await work(city)

        out["fastapi-cache2 @cache"] = with_fastapi_cache
    except Exception as e:  # noqa: BLE001
        print("fastapi-cache2 skipped:", e)

    try:
        import cachebox

        @cachebox.cached(cachebox.TTLCache(1000, 3600))
        async def with_cachebox(city):
            return await work(city)

        out["cachebox @cached"] = with_cachebox
    except Exception as e:  # noqa: BLE001
        print("cachebox skipped:", e)

    try:
        import moka_py

        @moka_py.cached(maxsize=1000, ttl=3600)
        async def with_moka(city):
            return await work(city)

        out["moka-py @cached"] = with_moka
    except Exception as e:  # noqa: BLE001
        print("moka-py skipped:", e)

    try:
        from datetime import timedelta

        from theine import Memoize

        @Memoize(10000, timedelta(hours=1))
        async def with_theine(city):
            return await work(city)

        @with_theine.key
        def _(city):
            return f"weather:{city}"

        out["theine @Memoize"] = with_theine
    except Exception as e:  # noqa: BLE001
        print("theine skipped:", e)

    import cachetools

    class TaskCache(cachetools.TTLCache):
        def __missing__(self, key):
            task = asyncio.ensure_future(work(key))
            self[key] = task
            return task

    tasks = TaskCache(1000, 3600)

    async def with_cachetools(city):
        return await tasks[city]

    out["cachetools + Task (use case)"] = with_cachetools
    return out


async def main():
    table = sides()
    plain = {"Lisbon": {"city": "Lisbon"}}

    async def bare(city):
        return plain.get(city)

    table["dict.get in an async def"] = bare
    for fn in table.values():
        await fn("Lisbon")
        await fn("Lisbon")
    best = {name: float("inf") for name in table}
    for _ in range(ROUNDS):
        for name, fn in table.items():
            start = time.perf_counter()
            for _ in range(N):
                await fn("Lisbon")
            best[name] = min(best[name], (time.perf_counter() - start) / N)
    for name, secs in sorted(best.items(), key=lambda kv: kv[1]):
        print(f"{name:32s} {secs * 1e6:8.3f} µs per hit")


asyncio.run(main())
