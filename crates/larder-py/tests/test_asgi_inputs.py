"""larder.asgi driven in-process with raw ASGI calls: what a hostile or broken request or app
does to the middleware. Bad input passes to the app uncached or fails as the app's own error;
nothing half-made is stored."""

import asyncio

import pytest

import larder
from larder.asgi import CacheMiddleware, cache_response


def scope(path="/", headers=None, method="GET", query=b""):
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": query, "root_path": "", "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": headers if headers is not None else [(b"host", b"example.test")],
    }


async def call(app, s):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(s, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, body


def counting_app(behaviour):
    calls = []

    async def app(s, receive, send):
        calls.append(s["type"])
        await behaviour(s, receive, send)

    return app, calls


async def ok(s, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def middleware(app):
    return CacheMiddleware(app, cache=larder.Cache.from_url("memory://"), ttl="60s")


def test_requests_that_are_not_valid_http_pass_to_the_app_uncached():
    app, calls = counting_app(ok)
    mw = middleware(app)

    async def run():
        bad = [(b"host", b"example.test"), (b"x-evil", b"line\nbreak")]
        for _ in range(2):
            assert (await call(mw, scope(headers=bad)))[2] == b"hello"
        for _ in range(2):
            assert (await call(mw, scope(method="G ET")))[2] == b"hello"
        # A request without Host takes the server's address; one that is fine is cached.
        for _ in range(2):
            assert (await call(mw, scope(headers=[])))[2] == b"hello"

    asyncio.run(run())
    assert len(calls) == 5


def test_other_scopes_reach_the_app_untouched():
    seen = []

    async def app(s, receive, send):
        seen.append(s["type"])

    mw = middleware(app)
    asyncio.run(mw({"type": "lifespan"}, None, None))
    asyncio.run(mw({"type": "websocket"}, None, None))
    assert seen == ["lifespan", "websocket"]


def test_the_apps_exception_reaches_the_server_as_itself_and_nothing_is_stored():
    class Broken(Exception):
        pass

    async def raises(s, receive, send):
        raise Broken("no")

    app, calls = counting_app(raises)
    mw = middleware(app)

    async def run():
        for _ in range(2):
            with pytest.raises(Broken):
                await call(mw, scope())

    asyncio.run(run())
    assert len(calls) == 2


def test_a_response_the_app_did_not_finish_fails_and_is_not_stored():
    async def cut(s, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})

    async def silent(s, receive, send):
        return None

    for behaviour, says in [(cut, "before its last body message"), (silent, "without starting a response")]:
        app, calls = counting_app(behaviour)
        mw = middleware(app)

        async def run():
            for _ in range(2):
                with pytest.raises(RuntimeError, match=says):
                    await call(mw, scope())

        asyncio.run(run())
        assert len(calls) == 2


def test_messages_out_of_order_are_an_error_for_the_app():
    errors = []

    async def twice(s, receive, send):
        await send({"type": "http.response.body", "body": b"early"})

    async def app(s, receive, send):
        try:
            await twice(s, receive, send)
        except RuntimeError as e:
            errors.append(str(e))
            raise

    mw = middleware(app)
    with pytest.raises(RuntimeError):
        asyncio.run(call(mw, scope()))
    assert errors and "out of order" in errors[0]


def test_a_hit_is_answered_without_calling_the_app():
    app, calls = counting_app(ok)
    mw = middleware(app)

    async def run():
        first = await call(mw, scope())
        second = await call(mw, scope())
        return first, second

    (s1, h1, b1), (s2, h2, b2) = asyncio.run(run())
    assert (s1, b1, h1["x-cache"]) == (200, b"hello", "MISS")
    assert (s2, b2, h2["x-cache"]) == (200, b"hello", "HIT")
    assert "date" not in h2, "the server adds its own Date"
    assert len(calls) == 1


def test_bad_rules_are_refused_with_the_proxys_words():
    with pytest.raises(ValueError, match=r"rules\[0\].*must start with '/'"):
        CacheMiddleware(ok, cache=larder.Cache.from_url("memory://"), rules=[{"path": "users"}])
    with pytest.raises(ValueError, match=r"rules\[1\].*unknown field `tll`"):
        CacheMiddleware(ok, cache=larder.Cache.from_url("memory://"), rules=[{"path": "/"}, {"path": "/", "tll": 5}])


def test_cache_response_refuses_an_argument_it_cannot_key_on():
    from starlette.requests import Request

    class Session:
        pass

    @cache_response(ttl=60, cache=larder.Cache.from_url("memory://"))
    async def endpoint(item: int, db: Session):
        return {"item": item}

    request = Request(scope(path="/items", query=b"b=2&a=1"))
    with pytest.raises(TypeError, match="skip="):
        asyncio.run(endpoint(item=1, db=Session(), _larder_request=request))

    calls = []

    @cache_response(ttl=60, cache=larder.Cache.from_url("memory://"), skip=["db"])
    async def skipped(item: int, db: Session):
        calls.append(item)
        return {"item": item}

    async def run():
        for query in [b"b=2&a=1", b"a=1&b=2"]:
            r = Request(scope(path="/items", query=query))
            assert await skipped(item=1, db=Session(), _larder_request=r) == {"item": 1}
        r = Request(scope(path="/items", query=b"a=1&b=3"))
        await skipped(item=1, db=Session(), _larder_request=r)

    asyncio.run(run())
    assert calls == [1, 1], "sorted query shares an entry; another query does not"


def test_an_endless_stream_stops_when_its_last_reader_leaves():
    state = {"sent": 0, "stopped": None}

    async def endless(s, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 16384, "more_body": True})
                state["sent"] += 1
        except OSError as e:
            state["stopped"] = str(e)
            raise

    mw = CacheMiddleware(endless, cache=larder.Cache.from_url("memory://"), ttl="60s", max_body=65536)

    class Left(Exception):
        pass

    async def run():
        got = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            got.append(message)
            if len(got) > 20:
                raise Left()  # the client hangs up, as a server's send would say

        with pytest.raises(Left):
            await mw(scope(path="/endless"), receive, send)
        for _ in range(500):
            if state["stopped"] is not None:
                break
            await asyncio.sleep(0.01)

    asyncio.run(run())
    assert state["stopped"] is not None, f"the app still streams ({state['sent']} parts sent)"


def test_purges_by_url_tag_and_all_and_a_bad_prefix_is_a_value_error():
    from larder.asgi import HttpCache

    async def tagged(s, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"surrogate-key", b"t1 t2")]})
        await send({"type": "http.response.body", "body": b"x"})

    app, calls = counting_app(tagged)
    http_cache = HttpCache(larder.Cache.from_url("memory://"), ttl="60s")
    mw = CacheMiddleware(app, http_cache=http_cache)

    async def run():
        async def cached_after(purge):
            await call(mw, scope(path="/a"))
            assert (await call(mw, scope(path="/a")))[1]["x-cache"] == "HIT"
            await purge()
            return (await call(mw, scope(path="/a")))[1]["x-cache"]

        async def by_url():
            assert await http_cache.purge_url("http://example.test/a") is True

        assert await cached_after(by_url) == "MISS"
        assert await cached_after(lambda: http_cache.purge_tag("t2")) == "MISS"
        assert await cached_after(http_cache.purge_all) == "MISS"
        with pytest.raises(ValueError, match="more than 4 path segments"):
            await http_cache.purge_prefix("http://example.test/a/b/c/d/e")
        with pytest.raises(ValueError):
            await http_cache.purge_url("http://exa mple.test/")

    asyncio.run(run())
    # The first round's miss, then each purge's next request: one call each.
    assert len(calls) == 4
    assert http_cache.stats()["fills"] == 4


def test_cache_status_says_stored_only_when_a_later_request_can_use_it():
    """The same words as larder-proxy's (crates/larder-http/tests/rules.rs): `stored` only for a
    response a later request can use; otherwise the reason."""
    for cache_control, says in [
        (b"max-age=60", "ttl=60; stored"),
        (None, "detail=no-freshness"),
        (b"max-age=0", "detail=no-freshness"),
        (b"no-store, max-age=60", "detail=no-store"),
    ]:
        async def app(s, receive, send, cache_control=cache_control):
            headers = [(b"content-type", b"text/plain")]
            if cache_control is not None:
                headers.append((b"cache-control", cache_control))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"hello"})

        app, calls = counting_app(app)
        mw = CacheMiddleware(app, cache=larder.Cache.from_url("memory://"))
        status, headers, _ = asyncio.run(call(mw, scope("/p")))
        assert status == 200
        assert headers["cache-status"].endswith(says), (cache_control, headers["cache-status"])
        asyncio.run(call(mw, scope("/p")))
        assert len(calls) == (1 if says.endswith("stored") else 2), (cache_control, calls)


def test_a_keyed_posts_body_that_is_not_what_asgi_promises_reaches_the_app_as_it_came():
    """A POST under a `key_body` rule whose `receive` gives a body that is not bytes, more bytes
    than declared, or a disconnect: the middleware keys nothing and hands the app every message it
    read, then the rest."""
    got = []

    async def echo(s, receive, send):
        messages = []
        while True:
            m = await receive()
            messages.append(m)
            if m["type"] != "http.request" or not m.get("more_body"):
                break
        got.append(messages)
        await ok(s, receive, send)

    app, calls = counting_app(echo)
    mw = CacheMiddleware(app, cache=larder.Cache.from_url("memory://"),
                         rules=[{"path": "/ask", "ttl": 60, "key_body": "1KiB"}])
    post = scope("/ask", method="POST", headers=[(b"host", b"t"), (b"content-length", b"4")])

    async def send_with(messages):
        queue = list(messages)
        sent = []

        async def receive():
            return queue.pop(0) if queue else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await mw(post, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        return {k.decode(): v.decode() for k, v in start["headers"]}

    cases = [
        [{"type": "http.request", "body": "text", "more_body": False}],
        [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.request", "body": b"de", "more_body": False}],
        [{"type": "http.request", "body": b"ab", "more_body": True}, {"type": "http.disconnect"}],
    ]
    for messages in cases:
        headers = asyncio.run(send_with(messages))
        assert headers.get("x-cache") is None, "the app answered: not the cache"
        assert got[-1] == messages, "the app got every message as it came"
    # A whole body is keyed and answered from the cache the second time.
    whole = [{"type": "http.request", "body": b"abcd", "more_body": False}]
    assert asyncio.run(send_with(whole))["x-cache"] == "MISS"
    assert asyncio.run(send_with(whole))["x-cache"] == "HIT"
    assert len(calls) == len(cases) + 1
