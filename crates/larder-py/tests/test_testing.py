"""larder.testing: every larder cache switched off in a test, or all of them cleared between
tests, through the pytest fixtures the package registers and the context manager. The example
app is a FastAPI app with a `@cached` dependency and `CacheMiddleware` in front."""

import asyncio

import pytest
from fastapi import FastAPI

import larder
import larder.testing
from larder.asgi import CacheMiddleware
from test_asgi_inputs import call, scope

calls = {"price": 0, "page": 0}


@larder.cached(ttl="1h")
async def price(item: str) -> int:
    calls["price"] += 1
    return 42


@larder.cached(ttl="1h")
def tax(item: str) -> float:
    calls["price"] += 1
    return 0.2


api = FastAPI()


@api.get("/page")
async def page():
    calls["page"] += 1
    return {"item": "tea", "price": await price("tea")}


app = CacheMiddleware(api, cache=larder.Cache.from_url("memory://", namespace="testing"), ttl="1h")


def get_page():
    return asyncio.run(call(app, scope("/page")))


def test_switched_off_every_call_reaches_the_function_and_the_app(larder_disabled):
    before = dict(calls)
    for _ in range(3):
        assert asyncio.run(price("tea")) == 42
        assert tax("tea") == 0.2
        status, headers, _ = get_page()
        assert status == 200 and "cache-status" not in headers
    assert calls["price"] - before["price"] == 3 * 2 + 3
    assert calls["page"] - before["page"] == 3


def test_cleared_between_tests_then_cached_again(larder_cleared):
    before = dict(calls)
    assert asyncio.run(price("tea")) == 42
    assert asyncio.run(price("tea")) == 42
    get_page()
    _, headers, _ = get_page()
    assert headers["x-cache"] == "HIT"
    assert calls["price"] - before["price"] == 1 and calls["page"] - before["page"] == 1
    larder.testing.clear_all()
    asyncio.run(price("tea"))
    _, headers, _ = get_page()
    assert headers["x-cache"] == "MISS", "the response cache was emptied too"
    assert calls["page"] - before["page"] == 2


def test_the_context_manager_nests_and_restores():
    with larder.testing.disabled():
        with larder.testing.disabled():
            pass
        before = calls["price"]
        asyncio.run(price("nested"))
        asyncio.run(price("nested"))
        assert calls["price"] - before == 2, "still off after the inner block"
    before = calls["price"]
    asyncio.run(price("nested"))
    asyncio.run(price("nested"))
    assert calls["price"] - before == 1, "on again after the outer block"


def test_clear_all_inside_a_loop_says_to_await():
    async def inside():
        with pytest.raises(RuntimeError, match="aclear_all"):
            larder.testing.clear_all()
        await larder.testing.aclear_all()

    asyncio.run(inside())
