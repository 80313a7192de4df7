"""A store outage is told through Python's `logging` (the `larder` logger): one warning when the
store stops answering and its circuit breaker opens, one when it is back."""

import asyncio
import logging
import shutil
import subprocess
import time

import larder
from conftest import start_redis, until, wait_port


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def store_lines(self, words):
        return [r for r in self.records if r.getMessage().startswith("remote store") and words in r.getMessage()]


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends():
    lines = Lines()
    logger = logging.getLogger("larder")
    logger.addHandler(lines)
    url, proc = start_redis()
    port = int(url.rsplit(":", 1)[1])
    try:
        cache = larder.Cache.from_url(url, namespace="outage")
        asyncio.run(cache.set("a", 1))
        proc.kill()
        proc.wait()

        async def calls(n):
            for i in range(n):
                await cache.get(f"k{i}")

        # Calls fail until the breaker opens; more calls after that log nothing more.
        assert until(lambda: asyncio.run(calls(5)) or cache.stats()["breaker_open"])
        asyncio.run(calls(50))
        assert until(lambda: lines.store_lines("circuit breaker open")), [r.getMessage() for r in lines.records]
        opened = lines.store_lines("circuit breaker open")
        assert len(opened) == 1 and opened[0].levelno == logging.WARNING, opened
        assert "cache=" in opened[0].getMessage()

        # The same server comes back on the same port: the breaker's probe closes it.
        proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(port, "redis-server")
        assert until(lambda: asyncio.run(calls(1)) or not cache.stats()["breaker_open"], limit=60)
        assert until(lambda: lines.store_lines("recovered"))
        assert len(lines.store_lines("recovered")) == 1
        assert len(lines.store_lines("circuit breaker open")) == 1
    finally:
        logger.removeHandler(lines)
        proc.kill()
        proc.wait()


def test_a_lock_asked_of_a_memory_cache_is_said_once_and_the_middleware_says_nothing():
    """`get_or_fetch(distributed_lock=)` on a cache with no store warns once (the lock cannot
    work there); the response cache, which takes the lock on every fill by default, does not."""
    from test_asgi_inputs import call, ok, scope

    from larder.asgi import CacheMiddleware

    lines = Lines()
    logger = logging.getLogger("larder")
    logger.addHandler(lines)
    try:
        mw = CacheMiddleware(ok, cache=larder.Cache.from_url("memory://", namespace="quiet"), ttl="60s")
        for _ in range(3):
            asyncio.run(call(mw, scope("/quiet")))
        cache = larder.Cache.from_url("memory://", namespace="lonely")

        async def fetch(i):
            async def factory():
                return i

            return await cache.get_or_fetch(f"k{i}", factory, distributed_lock=5)

        for i in range(3):
            assert asyncio.run(fetch(i)) == i
        said = lambda: [r for r in lines.records if "distributed_lock" in r.getMessage()]  # noqa: E731
        assert until(lambda: said(), limit=5)
        time.sleep(0.2)
        assert len(said()) == 1 and said()[0].levelno == logging.WARNING, [r.getMessage() for r in said()]
    finally:
        logger.removeHandler(lines)
