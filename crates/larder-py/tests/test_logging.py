"""A store outage is told through Python's `logging` (the `larder` logger): one warning when the
store stops answering and its circuit breaker opens, one when it is back."""

import asyncio
import logging
import shutil
import subprocess
import time

import larder
from conftest import start_redis, wait_port


def until(predicate, limit=20.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


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
