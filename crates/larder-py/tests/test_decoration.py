"""Mistakes in a decorator's arguments are errors when the function is decorated (at import),
with words that say what to write; and one cache per app (`set_default_cache`, or the one given
to the middleware)."""

import datetime

import pytest

import larder
from larder import _cached
from larder.asgi import CacheMiddleware, cache_response


def test_cached_used_bare_caches_with_the_defaults():
    calls = []

    @larder.cached
    def double(x):
        calls.append(x)
        return 2 * x

    assert (double(2), double(2), calls) == (4, 4, [2])


@pytest.mark.parametrize(
    "given, words",
    [
        ({"ttl": "5 parsecs"}, r"@cached\(ttl=...\): not a duration"),
        ({"stale": "soon"}, r"@cached\(stale=...\)"),
        ({"ttl": object()}, r"@cached\(ttl=...\): a duration is seconds"),
        ({"distributed_lock": "x"}, r"@cached\(distributed_lock=...\)"),
        ({"ttl": datetime.timedelta(seconds=-1)}, r"@cached\(ttl=...\)"),
    ],
)
def test_a_bad_duration_is_an_error_when_decorating(given, words):
    with pytest.raises((ValueError, TypeError), match=words):
        larder.cached(**given)


def test_other_mistakes_are_errors_when_decorating():
    with pytest.raises(TypeError, match="unless"):
        larder.cached(unless=True)
    with pytest.raises(TypeError, match="list of names"):
        larder.cached(skip="session")
    with pytest.raises(TypeError, match="async def"):

        @larder.cached(distributed_lock=5)
        def sync(x):
            return x

    with pytest.raises(ValueError, match="town"):

        @larder.cached(key="weather:{town}")
        async def weather(city: str):
            return city


def test_cache_response_mistakes_are_errors_when_decorating():
    with pytest.raises(TypeError, match="parentheses"):

        @cache_response
        async def page():
            return {}

    with pytest.raises(ValueError, match=r"cache_response\(ttl=...\)"):
        cache_response(ttl="a while")


async def _app(scope, receive, send):  # never called: the middleware is only built
    raise AssertionError


def test_one_cache_per_app(monkeypatch):
    monkeypatch.setattr(_cached, "_default", None)
    monkeypatch.setattr(_cached, "_default_named", False)
    monkeypatch.setattr(_cached, "_default_peek_call", _cached._first_peek_call)
    made = larder.default_cache()  # used before the app was set up: a memory cache
    apps = larder.Cache.from_url("memory://", namespace="app")
    CacheMiddleware(_app, cache=apps)
    assert larder.default_cache() is apps and apps is not made
    # A second middleware does not take it over; naming one does.
    CacheMiddleware(_app, cache=larder.Cache.from_url("memory://"))
    assert larder.default_cache() is apps
    named = larder.Cache.from_url("memory://", namespace="named")
    larder.set_default_cache(named)
    CacheMiddleware(_app, cache=apps)
    assert larder.default_cache() is named
    assert _cached._default_peek_call == named.peek_call, "the hit path reads the named cache"
    with pytest.raises(TypeError, match="larder.Cache"):
        larder.set_default_cache("redis://")


def test_a_url_without_a_scheme_is_refused():
    for url in ("memory", "localhost:6379"):
        with pytest.raises(ValueError, match="scheme"):
            larder.Cache.from_url(url)


def test_a_rule_method_that_is_not_an_http_method_is_refused():
    from larder.asgi import HttpCache

    with pytest.raises(ValueError, match="GETT"):
        HttpCache(larder.Cache.from_url("memory://"), rules=[{"path": "/", "ttl": 5, "methods": ["GETT"]}])


def test_rules_that_cannot_work_are_refused_as_the_proxy_refuses_them():
    from larder.asgi import HttpCache

    cache = larder.Cache.from_url("memory://")
    with pytest.raises(ValueError, match=r"rules\[1\] \(/health\) is never used: rules\[0\] \(/\)"):
        HttpCache(cache, rules=[{"path": "/", "ttl": 5}, {"path": "/health", "bypass": True}])
    with pytest.raises(ValueError, match="invalidate: it acts after a successful write"):
        HttpCache(cache, rules=[{"path": "/users", "invalidate": ["/users"]}])
    with pytest.raises(ValueError, match=r"\{uid\} .* is not a variable"):
        HttpCache(cache, rules=[{"path": "/users/{id}", "methods": ["PUT"], "invalidate": ["/users/{uid}"]}])
    # The narrower rule first, an exact path and a template are fine.
    HttpCache(cache, rules=[
        {"path": "/health", "bypass": True},
        {"path": "/", "exact": True, "ttl": 60},
        {"path": "/users/{id}", "methods": ["PUT", "DELETE"], "invalidate": ["/users/{id}", "/users"]},
        {"path": "/", "ttl": 5},
    ])


def test_cache_response_above_the_route_decorator_is_an_error():
    from fastapi import FastAPI

    app = FastAPI()
    with pytest.raises(TypeError, match=r"below @app.get"):

        @cache_response(ttl=60)
        @app.get("/items/{item_id}")
        async def item(item_id: int):
            return {"id": item_id}

    # Below it, as documented, it is fine.
    @app.get("/users/{user_id}")
    @cache_response(ttl=60)
    async def user(user_id: int):
        return {"id": user_id}
