"""larder.Cache from Python: values, single-flight, errors, fail-safe, durations, sync calls, and
a shared Redis tier (a real redis-server, see conftest.py)."""

import asyncio
import datetime as dt
import uuid
from decimal import Decimal

import pytest

import larder


def run(coro):
    return asyncio.run(coro)


def test_a_memory_hit_is_the_same_object_and_needs_no_trip_to_the_runtime():
    cache = larder.Cache.from_url("memory://", ttl=60)
    value = {"user": 1, "tags": ["a", "b"]}

    async def main():
        await cache.set("k", value)
        pending = cache.get("k")
        assert isinstance(pending, larder.Ready)
        assert await pending is value
        assert await cache.get("missing") is None

    run(main())


VALUES = [
    None,
    True,
    False,
    0,
    -7,
    2**64 + 1,
    -(2**100),
    1.5,
    "text",
    b"\x00bytes",
    [1, [2, [3]]],
    (1, "two", (3.0,)),
    {"a": 1, 2: "int key", "nested": {"t": (1, 2)}},
    dt.datetime(2026, 11, 29, 12, 30, 15, 123456, tzinfo=dt.timezone.utc),
    dt.datetime(2026, 11, 29, 12, 30),
    dt.date(2026, 11, 29),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("12.3400"),
]


def test_values_come_back_as_the_same_types_through_redis(redis_url):
    writer = larder.Cache.from_url(redis_url, namespace="values")
    # Another instance on the same Redis: nothing shared in memory, so it decodes.
    reader = larder.Cache.from_url(redis_url, namespace="values")

    async def main():
        for i, v in enumerate(VALUES):
            await writer.set(f"v{i}", v, ttl="1m")
        for i, v in enumerate(VALUES):
            got = await reader.get(f"v{i}")
            assert got == v, (v, got)
            assert type(got) is type(v), (v, got)

    run(main())


def test_a_value_that_cannot_be_encoded_is_a_type_error_and_nothing_is_stored():
    cache = larder.Cache.from_url("memory://")

    class Custom:
        pass

    async def main():
        with pytest.raises(TypeError, match="Custom"):
            await cache.set("k", {"inner": [Custom()]})
        assert await cache.get("k") is None

        async def bad():
            return {1, 2}

        with pytest.raises(TypeError, match="set"):
            await cache.get_or_fetch("f", bad)
        assert await cache.get("f") is None

    run(main())


def test_a_thousand_coroutines_on_one_cold_key_make_one_call():
    cache = larder.Cache.from_url("memory://", ttl=60)
    calls = 0

    async def slow():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        return {"answer": 42}

    async def main():
        results = await asyncio.gather(*[cache.get_or_fetch("cold", slow) for _ in range(1000)])
        assert all(r == {"answer": 42} for r in results)
        assert calls == 1
        stats = cache.stats()
        assert stats["factory_runs"] == 1
        assert stats["coalesced_waiters"] == 999

    run(main())


def test_the_factorys_exception_reaches_every_waiter_as_itself():
    cache = larder.Cache.from_url("memory://")

    class UpstreamDown(Exception):
        pass

    async def failing():
        await asyncio.sleep(0.05)
        raise UpstreamDown("weather API is down")

    async def main():
        results = await asyncio.gather(
            *[cache.get_or_fetch("w", failing) for _ in range(10)], return_exceptions=True
        )
        assert all(isinstance(r, UpstreamDown) for r in results)
        assert str(results[0]) == "weather API is down"

    run(main())


def test_fail_safe_serves_the_stale_value_when_the_factory_fails():
    cache = larder.Cache.from_url("memory://")
    attempts = 0

    async def flaky():
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            raise RuntimeError("down")
        return "good"

    async def main():
        assert await cache.get_or_fetch("s", flaky, ttl=0.2, stale="1h") == "good"
        await asyncio.sleep(0.3)
        assert await cache.get_or_fetch("s", flaky, ttl=0.2, stale="1h") == "good"
        assert attempts == 2
        assert cache.stats()["stale_served"] == 1

    run(main())


def test_cancelling_one_waiter_cancels_no_one_else():
    cache = larder.Cache.from_url("memory://")

    async def slow():
        await asyncio.sleep(0.2)
        return "done"

    async def main():
        first = asyncio.ensure_future(cache.get_or_fetch("c", slow))
        second = asyncio.ensure_future(cache.get_or_fetch("c", slow))
        await asyncio.sleep(0.05)
        first.cancel()
        assert await second == "done"
        assert await cache.get("c") == "done"

    run(main())


def test_a_hard_timeout_is_a_timeout_error():
    cache = larder.Cache.from_url("memory://")

    async def hangs():
        await asyncio.sleep(5)

    async def main():
        with pytest.raises(TimeoutError):
            await cache.get_or_fetch("h", hangs, hard_timeout=0.1)

    run(main())


@pytest.mark.parametrize("ttl", [60, 60.0, "60s", "1m", dt.timedelta(minutes=1)])
def test_durations_are_seconds_timedeltas_or_strings(ttl):
    cache = larder.Cache.from_url("memory://")

    async def main():
        await cache.set("d", 1, ttl=ttl)
        assert await cache.get("d") == 1

    run(main())


def test_a_bad_duration_is_a_clear_error():
    cache = larder.Cache.from_url("memory://")
    with pytest.raises(ValueError, match="not a duration"):
        cache.set_sync("d", 1, ttl="soon")
    with pytest.raises(TypeError, match="duration"):
        cache.set_sync("d", 1, ttl=[1])


def test_code_that_is_not_async_has_sync_calls(redis_url):
    cache = larder.Cache.from_url(redis_url, namespace="sync")
    cache.set_sync("s", [1, 2, 3], ttl="1m")
    assert cache.get_sync("s") == [1, 2, 3]
    assert cache.delete_sync("s") is True
    assert cache.get_sync("s") is None


def test_two_caches_on_one_redis_share_entries_and_tags(redis_url):
    a = larder.Cache.from_url(redis_url, namespace="shared")
    b = larder.Cache.from_url(redis_url, namespace="shared")

    async def main():
        await a.set("user:1", {"name": "Ada"}, tags=["user:1"])
        assert await b.get("user:1") == {"name": "Ada"}
        await b.invalidate_tag("user:1")
        assert await b.get("user:1") is None

    run(main())


def test_an_unknown_store_is_a_clear_error():
    with pytest.raises(ValueError, match="ftp://"):
        larder.Cache.from_url("ftp://nowhere")


def test_many_at_once_namespaces_and_tags(redis_url):
    cache = larder.Cache.from_url(redis_url, namespace="many")

    async def main():
        await cache.set_many({"a": 1, "b": [2], "c": {"three": 3}})
        assert await cache.get_many(["a", "missing", "c", "b"]) == [1, None, {"three": 3}, [2]]

        users = cache.namespace("users")
        await users.set("1", "ada")
        assert await cache.get("1") is None
        assert await users.get("1") == "ada"
        await cache.clear(namespace="users")
        assert await users.get("1") is None
        assert await cache.get("a") == 1

        await cache.set("t1", 1, tags=["x"])
        await cache.set("t2", 2, tags=["y"])
        await cache.invalidate_tags(["x", "y"])
        assert await cache.get_many(["t1", "t2"]) == [None, None]

    run(main())


def test_with_redis_down_every_call_is_still_answered():
    from conftest import start_redis

    url, proc = start_redis()
    cache = larder.Cache.from_url(url, namespace="down")
    calls = 0

    async def factory():
        nonlocal calls
        calls += 1
        return {"n": calls}

    async def main():
        assert await cache.get_or_fetch("k", factory, ttl=60) == {"n": 1}
        proc.kill()
        proc.wait()
        # The memory tier still answers, and new keys still reach their factory.
        assert await cache.get_or_fetch("k", factory, ttl=60) == {"n": 1}
        for i in range(20):
            assert (await cache.get_or_fetch(f"new{i}", factory, ttl=60))["n"] >= 2
        await cache.set("x", 1)
        assert await cache.get("x") == 1

    run(main())
    assert cache.stats()["store_errors"] + int(cache.stats()["breaker_open"]) > 0


# Classes the store may name: module-level, imported before any value is read.
from dataclasses import dataclass, field  # noqa: E402

import pydantic  # noqa: E402


@dataclass
class Point:
    x: int
    y: int
    label: str = "p"
    tags: list = field(default_factory=list)


@dataclass
class Route:
    start: Point
    stop: Point
    when: dt.datetime


class User(pydantic.BaseModel):
    id: int
    name: str
    joined: dt.date
    route: Route | None = None
    friends: list["User"] = []


def test_dataclasses_and_pydantic_models_come_back_as_themselves(redis_url):
    writer = larder.Cache.from_url(redis_url, namespace="objects")
    reader = larder.Cache.from_url(redis_url, namespace="objects")
    route = Route(Point(1, 2, tags=["a"]), Point(3, 4), dt.datetime(2026, 1, 2, 3, 4, 5))
    user = User(
        id=7,
        name="Ada",
        joined=dt.date(2020, 5, 17),
        route=route,
        friends=[User(id=8, name="Bob", joined=dt.date(2021, 1, 1))],
    )

    async def main():
        await writer.set("route", route)
        await writer.set("user", user)
        got_route = await reader.get("route")
        got_user = await reader.get("user")
        assert type(got_route) is Route and got_route == route
        assert type(got_user) is User and got_user == user
        assert type(got_user.friends[0]) is User

    run(main())


def test_a_stored_value_naming_an_unknown_class_is_a_miss_not_an_import(redis_url):
    """Data from the store never imports a module or calls a class that is not a dataclass or a
    Pydantic model this process already has."""
    import subprocess
    import sys

    # Another process stores a dataclass from a module this process never imported.
    script = (
        "import asyncio, larder, dataclasses, types, sys\n"
        "mod = types.ModuleType('never_imported_here'); sys.modules['never_imported_here'] = mod\n"
        "@dataclasses.dataclass\n"
        "class Secret:\n    x: int\n"
        "Secret.__module__ = 'never_imported_here'; mod.Secret = Secret\n"
        f"c = larder.Cache.from_url({redis_url!r}, namespace='unknown')\n"
        "asyncio.run(c.set('k', Secret(1), ttl=60))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    cache = larder.Cache.from_url(redis_url, namespace="unknown")
    assert "never_imported_here" not in sys.modules
    assert cache.get_sync("k") is None
    assert "never_imported_here" not in sys.modules


def test_larders_awaitables_are_coroutines():
    """They start when awaited, so asyncio.run, gather and create_task take them, even when
    made before a loop runs."""
    cache = larder.Cache.from_url("memory://")
    pending = cache.set("k", 1)
    asyncio.run(pending)
    assert asyncio.run(cache.get("k")) == 1

    async def five():
        return 5

    assert asyncio.run(cache.get_or_fetch("f", five)) == 5

    async def main():
        task = asyncio.create_task(cache.get_or_fetch("g", five))
        return await task

    assert asyncio.run(main()) == 5


def test_under_uvloop_as_under_asyncio():
    import uvloop
    cache = larder.Cache.from_url("memory://")
    calls = 0

    async def slow():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"loop": "uvloop"}

    async def main():
        results = await asyncio.gather(*[cache.get_or_fetch("u", slow) for _ in range(200)])
        assert all(r == {"loop": "uvloop"} for r in results)
        await cache.set("s", [1])
        assert await cache.get("s") == [1]

    uvloop.run(main())
    assert calls == 1


def test_values_and_single_flight_through_memcached(memcached_url):
    writer = larder.Cache.from_url(memcached_url, namespace="mc")
    reader = larder.Cache.from_url(memcached_url, namespace="mc")
    calls = 0

    async def slow():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"when": dt.date(2026, 11, 29), "n": 2**70}

    async def main():
        for i, v in enumerate(VALUES):
            await writer.set(f"v{i}", v, ttl="1m")
        for i, v in enumerate(VALUES):
            got = await reader.get(f"v{i}")
            assert got == v and type(got) is type(v), (v, got)
        results = await asyncio.gather(*[writer.get_or_fetch("f", slow) for _ in range(100)])
        assert all(r == {"when": dt.date(2026, 11, 29), "n": 2**70} for r in results)
        assert await reader.get("f") == results[0]

    run(main())
    assert calls == 1


class Opaque:
    """Neither a dataclass nor a Pydantic model: only pickle can carry it."""

    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        return isinstance(other, Opaque) and other.n == self.n


def test_pickle_only_when_asked_for(redis_url):
    import subprocess
    import sys

    plain = larder.Cache.from_url(redis_url, namespace="pickled")
    with pytest.raises(TypeError, match="Opaque"):
        plain.set_sync("o", Opaque(1))

    # A process that never asked for pickle reads a pickled value as a miss.
    script = (
        "import larder, sys\n"
        f"c = larder.Cache.from_url({redis_url!r}, namespace='pickled')\n"
        "sys.exit(0 if c.get_sync('o') is None else 1)\n"
    )
    writer = larder.Cache.from_url(redis_url, namespace="pickled", pickle=True)
    writer.set_sync("o", Opaque(2))
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)

    # One that asked for it reads it back.
    reader = larder.Cache.from_url(redis_url, namespace="pickled", pickle=True)
    assert reader.get_sync("o") == Opaque(2)
    with pytest.raises(TypeError):
        writer.set_sync("f", lambda: 1)  # not even pickle can carry a lambda
