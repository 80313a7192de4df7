"""larder.asgi: HTTP response caching for ASGI apps (Starlette, FastAPI, any ASGI app), on the
same RFC 9111 engine as larder-http and larder-proxy.

    from larder.asgi import CacheMiddleware

    app = FastAPI()
    app.add_middleware(
        CacheMiddleware,
        cache=larder.Cache.from_url("redis://127.0.0.1:6379"),
        rules=[{"path": "/users", "ttl": "60s", "stale": "10m", "query": ["skip", "limit"]}],
    )

Rules have the shape of larder-proxy's `[[rule]]` tables (docs/CONFIG.md). Without `ttl` or a
rule that gives one, only responses whose own headers allow it are stored (a strict shared
cache). Streaming responses reach the client as the app produces them, are recorded as they
pass, and concurrent requests for the same URL read that one recording. A rule with `key_body`
(`{"path": "/search", "ttl": "60s", "key_body": "64KiB"}`) caches POSTs keyed on their body.

For one endpoint's result, keyed on its path, sorted query and arguments:

    @app.get("/weather/{city}")
    @cache_response(ttl="10m")
    async def weather(city: str, units: str = "metric") -> dict: ...
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import functools
import inspect
import json
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping, Optional, Tuple, TypeVar, Union

if TYPE_CHECKING:
    from typing_extensions import ParamSpec

    # The endpoint's own signature, kept for type checkers (the parameter FastAPI is given for
    # the request is added at run time only).
    _P = ParamSpec("_P")
_R = TypeVar("_R")

from . import _larder, _registry
from ._cached import _adopt_default, _KeyFormatter, _template_fields, _Uncached, default_cache
from ._larder import Cache, CallKey

__all__ = ["CacheMiddleware", "HttpCache", "cache_response"]

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


def _rule_text(index: int, rule: Mapping[str, Any]) -> str:
    if not isinstance(rule, Mapping):
        raise TypeError(f"rules[{index}]: a dict like larder-proxy's [[rule]], not {type(rule).__name__}")

    def plain(value: Any) -> Any:
        if isinstance(value, datetime.timedelta):
            return value.total_seconds()
        if isinstance(value, (list, tuple, set, frozenset)):
            return [plain(v) for v in value]
        return value

    return json.dumps({name: plain(value) for name, value in rule.items()})


class HttpCache:
    """A response cache: its settings, and purging what it stored. One can serve several apps
    (`CacheMiddleware(app, http_cache=...)`); `CacheMiddleware` makes one when given none.

    - `cache`: the `larder.Cache` holding the responses (default: `larder.default_cache()`).
    - `ttl`: makes it the application's cache: responses that say nothing about freshness are
      fresh for `ttl`. Without it, only what the responses' own headers allow is stored.
    - `rules`: larder-proxy's rules, as dicts, in order; the first that matches decides.
    - every other setting is larder-http's, by the name larder-proxy gives it, and defaults to
      larder-http's default, the same as the proxy's (`HttpCache.defaults()` lists them;
      `settings()` shows this cache's): `namespace`, `max_body` (bytes stored per response),
      `status_header`, `cache_status`, `tag_header` (`None` turns these off),
      `purge_prefix_depth`, `keyed_headers` (the forwarding headers that key an entry when a
      request carries one), `key_cookies`, `ignore_cookies`, `response_timeout`,
      `body_idle_timeout`, `fail_safe_throttle`, `hit_for_pass`, `keep_stale`,
      `recording_budget`, `finish_unread_below`, `store_set_cookie`, `etag_from_body`.
    - `distributed_lock`: on by default, so processes sharing a Redis make one call to the app for
      a cold URL between them; `False` turns it off, a duration is how long to wait for another
      process's response.
    - `fixed_host`: key every request on this host instead of its `Host` (one site per app), so
      purges can name paths alone; without it, purges name URLs (`http://host/users`).
    - `compression`: on by default (`True`): JSON, text and the like of 1 KiB or more are stored
      gzip-compressed once and sent to each client as its `Accept-Encoding` allows (gzip, br,
      zstd, or plain). `False` turns it off; a dict changes larder-proxy's `[compression]`
      keys: `{"encodings": ["br", "gzip"], "level": "best", "min_size": 2048, "types": [...]}`.
    """

    def __init__(
        self,
        cache: Optional[Cache] = None,
        *,
        ttl: Any = None,
        rules: Iterable[Mapping[str, Any]] = (),
        **settings: Any,
    ) -> None:
        texts = [_rule_text(i, r) for i, r in enumerate(rules)]
        if "compression" in settings:
            compression = settings["compression"]
            if not isinstance(compression, (bool, Mapping)):
                raise TypeError(f"compression: True, False or a dict, not {type(compression).__name__}")
            settings["compression"] = json.dumps(
                compression if isinstance(compression, bool) else dict(compression)
            )
        if cache is not None:
            # One cache per app: with no default named, the middleware's is everyone's.
            _adopt_default(cache)
        self._inner = _larder.HttpCache(
            cache if cache is not None else default_cache(),
            ttl=ttl,
            rules=texts,
            **settings,
        )
        _registry.add_http_cache(self)

    @staticmethod
    def defaults() -> dict:
        """larder-http's defaults: what every setting not given is (the proxy's too)."""
        return json.loads(_larder._http_defaults())

    def settings(self) -> dict:
        """Every setting of this response cache (durations in seconds)."""
        return json.loads(self._inner._settings())

    def purge_url(self, url: str) -> Awaitable[bool]:
        """Drops the response stored for an absolute URL (`http://host/path?query`)."""
        return self._inner.purge_url(url)

    def purge_prefix(self, prefix: str) -> Awaitable[None]:
        """Drops every response under a path prefix (`/users` takes `/users/42`)."""
        return self._inner.purge_prefix(prefix)

    def purge_tag(self, tag: str) -> Awaitable[None]:
        """Drops every response the app tagged `tag` in its `Surrogate-Key` header."""
        return self._inner.purge_tag(tag)

    def purge_all(self) -> Awaitable[None]:
        """Drops every response this cache stored (its namespace only)."""
        return self._inner.purge_all()

    def stats(self) -> dict:
        """The response cache's counters (fills, unrecorded, stalled, ...)."""
        return self._inner.stats()


# Tasks running the app for the cache: asyncio keeps only weak references to tasks.
_running: set = set()


def _start(app: Any, scope: dict, receive: Union[None, bytes, Receive], sink: Any) -> None:
    """Called on the request's event loop (in its context) when the cache needs the app:
    `receive` is the client's, or the body the cache keyed the request on, or `None`."""
    if receive is None:
        receive = _empty_receive()
    elif type(receive) is bytes:
        receive = _empty_receive(receive)
    task = asyncio.get_running_loop().create_task(_run(app, scope, receive, sink))
    _running.add(task)
    task.add_done_callback(_running.discard)


async def _run(app: Any, scope: dict, receive: Receive, sink: Any) -> None:
    try:
        await app(scope, receive, sink.send)
    except BaseException as exc:
        sink.fail(exc)
        if not isinstance(exc, Exception):
            raise
    else:
        sink.close()


def _empty_receive(body: bytes = b"") -> Receive:
    # The request the cache sends for a GET or HEAD (no body), or for a POST keyed on its body
    # (that body, read already), and no disconnect: the recording goes on for other clients
    # when the one that asked leaves.
    sent = False

    async def receive() -> Mapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")

    return receive


async def _read_body(receive: Receive, length: int, idle_timeout: float) -> Tuple[Optional[bytes], list]:
    """The request's body when it is exactly `length` bytes, read within `idle_timeout` seconds
    per message (else `None`), and the messages read, for the app to be given again."""
    read: list = []
    parts: list = []
    size = 0
    while True:
        try:
            message = await asyncio.wait_for(receive(), idle_timeout)
        except asyncio.TimeoutError:
            return None, read
        read.append(message)
        if message.get("type") != "http.request":
            return None, read  # the client left: the app sees it
        chunk = message.get("body", b"")
        if type(chunk) is not bytes:
            return None, read  # not what ASGI promises: the app gets it as it came
        size += len(chunk)
        if size > length:
            return None, read
        parts.append(chunk)
        if not message.get("more_body", False):
            return (b"".join(parts) if size == length else None), read


def _replay(read: list, receive: Receive) -> Receive:
    """`receive` with the messages already read given first."""
    pending = list(read)

    async def replay() -> Mapping[str, Any]:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class CacheMiddleware:
    """An ASGI middleware that answers from a larder response cache (see the module's docs).

    `CacheMiddleware(app, cache=..., rules=..., ttl=...)` takes `HttpCache`'s arguments, or an
    `http_cache=HttpCache(...)` made beforehand (to purge from elsewhere; also `self.http_cache`).
    """

    def __init__(self, app: Any, cache: Optional[Cache] = None, *, http_cache: Optional[HttpCache] = None, **settings: Any) -> None:
        if http_cache is not None and (cache is not None or settings):
            raise TypeError("give http_cache= or the settings to make one, not both")
        self.app = app
        self.http_cache = http_cache if http_cache is not None else HttpCache(cache, **settings)
        self._handle = self.http_cache._inner._engine(functools.partial(_start, app)).handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        answer = self._handle(scope, receive)
        if answer is None:
            return await self.app(scope, receive, send)
        if type(answer) is tuple:
            # A fresh hit in memory: answered without leaving this thread.
            status, headers, body = answer
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if type(answer) is _BodyWanted:
            return await self._keyed_post(scope, receive, send, answer)
        await _stream(await answer, send)

    async def _keyed_post(self, scope: Scope, receive: Receive, send: Send, wanted: Any) -> None:
        """A POST a `key_body` rule keys: looked up by its body, read here first; a body that
        cannot be read whole (past its length, stalled, the client gone) goes to the app with
        what was read given again."""
        body, read = await _read_body(receive, wanted.length, wanted.idle_timeout)
        answer = None if body is None else wanted.answer(body)
        if answer is None:
            return await self.app(scope, _replay(read, receive), send)
        if type(answer) is tuple:
            status, headers, body = answer
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await _stream(await answer, send)


_BodyWanted = _larder.BodyWanted


async def _stream(response: Any, send: Send) -> None:
    """Sends a response the cache answered, its body as it comes."""
    await send({"type": "http.response.start", "status": response.status, "headers": response.headers})
    next_chunk = response.next_chunk
    while True:
        chunk = next_chunk()
        if chunk is not None and type(chunk) is not bytes:
            chunk = await chunk
        if chunk is None:
            break
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@dataclasses.dataclass(frozen=True)
class CachedResponse:
    """A plain (not streaming) response an endpoint returned, as `cache_response` stores it."""

    status: int
    headers: list
    body: bytes


def _is_request_object(annotation: Any) -> bool:
    try:
        from starlette.background import BackgroundTasks
        from starlette.requests import HTTPConnection
        from starlette.responses import Response
    except ImportError:  # pragma: no cover - cache_response is for Starlette/FastAPI apps
        return False
    return inspect.isclass(annotation) and issubclass(annotation, (HTTPConnection, Response, BackgroundTasks))


def _route_of(endpoint: Any) -> Optional[str]:
    """The path of the Starlette/FastAPI route `endpoint` already serves, if any: found among the
    objects that refer to it (a route keeps its endpoint in its attributes). Run once per
    decorated endpoint (a few milliseconds), never per request."""
    import gc

    for referrer in gc.get_referrers(endpoint):
        if isinstance(referrer, dict) and referrer.get("endpoint") is endpoint and isinstance(referrer.get("path"), str):
            return referrer["path"]
    return None


def cache_response(
    ttl: Any = None,
    *,
    cache: Optional[Cache] = None,
    skip: Iterable[str] = (),
    tags: Iterable[str] = (),
    stale: Any = None,
    distributed_lock: Any = None,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Caches a FastAPI endpoint's result per request: keyed on the request's path, its query
    (sorted, so `?a=1&b=2` and `?b=2&a=1` share an entry) and every argument the endpoint gets,
    so two callers share a result only when the endpoint would give both the same one.

    - Arguments that are the request itself, a `Response` or `BackgroundTasks` are left out of
      the key; so are those named in `skip` (a database session, say). The others are keyed by
      value as in `@cached`; one with no value encoding (an object whose repr is its address) is
      a `TypeError` naming it, rather than an entry per request that is never hit.
    - Concurrent requests for one key make one call (single-flight); `stale` keeps serving the
      last result when the endpoint fails; `tags` are templates over the arguments
      (`"user:{user_id}"`) for `Cache.invalidate_tag`.
    - The result is what the endpoint returns: a value FastAPI serializes, or a plain
      `Response` (its status, headers and body). Streaming responses and responses that set a
      cookie are returned uncached: put `CacheMiddleware` in front for those.
    - `cache`: default `larder.default_cache()`: the one `set_default_cache` named, else the one
      given to `CacheMiddleware`, else a memory cache of this process.
    - `distributed_lock`: how long a request waits for another process's call (`async def`
      endpoints): with several workers on one Redis, one call among all of them fills a key.
    """
    if callable(ttl) and not isinstance(ttl, (int, float, str)) and not hasattr(ttl, "total_seconds"):
        raise TypeError("cache_response takes arguments: write @cache_response(ttl=60), with the parentheses")
    _larder._check_duration(ttl, "cache_response(ttl=...)")
    _larder._check_duration(stale, "cache_response(stale=...)")
    _larder._check_duration(distributed_lock, "cache_response(distributed_lock=...)")
    skipped = set(skip)
    tag_templates = tuple(tags)

    def decorate(endpoint: Callable[_P, _R]) -> Callable[_P, _R]:
        from starlette.requests import Request

        route = _route_of(endpoint)
        if route is not None:
            raise TypeError(
                f"cache_response on {endpoint.__qualname__}: it is already the endpoint of the route "
                f"{route!r}, which would serve it uncached; put @cache_response below @app.get(...), "
                "next to the function"
            )

        try:
            signature = inspect.signature(endpoint, eval_str=True)
        except (TypeError, NameError):  # Python 3.9, or a name only a type checker knows
            signature = inspect.signature(endpoint)
        params = list(signature.parameters.values())
        own_request = next((p.name for p in params if p.annotation is Request or p.annotation == "Request"), None)
        left_out = skipped | {p.name for p in params if _is_request_object(p.annotation)}
        request_name = own_request or "_larder_request"
        keyed = [p.name for p in params if p.name not in left_out]
        call_key = CallKey(f"{endpoint.__module__}.{endpoint.__qualname__}", ["\0path", "\0query", *keyed], [])
        formatter = _KeyFormatter(f"cache_response({endpoint.__qualname__})")
        for template in tag_templates:
            _template_fields(endpoint.__qualname__, template, signature)
        is_async = inspect.iscoroutinefunction(endpoint)
        if distributed_lock is not None and not is_async:
            raise TypeError(f"cache_response(distributed_lock=...) on {endpoint.__qualname__}: make it an `async def`")

        def key_of(kwargs: dict) -> tuple[str, Optional[list]]:
            request = kwargs[request_name]
            # An argument known only by its address (a session, a client) is refused by the
            # key (a TypeError naming it), as in @cached.
            named = {name: kwargs.get(name) for name in keyed}
            k = call_key.named({"\0path": request.url.path, "\0query": sorted(request.query_params.multi_items()), **named})
            return k, ([formatter.vformat(t, (), kwargs) for t in tag_templates] or None)

        def call_args(kwargs: dict) -> dict:
            if own_request is None:
                kwargs = dict(kwargs)
                del kwargs["_larder_request"]
            return kwargs

        def keep(value: Any) -> Any:
            from starlette.responses import Response, StreamingResponse

            if isinstance(value, StreamingResponse) or (
                isinstance(value, Response) and any(name == b"set-cookie" for name, _ in value.raw_headers)
            ):
                raise _Uncached(value)
            if isinstance(value, Response):
                return CachedResponse(value.status_code, list(value.raw_headers), bytes(value.body))
            return value

        def returned(value: Any) -> Any:
            if isinstance(value, CachedResponse):
                from starlette.responses import Response

                response = Response(value.body, status_code=value.status)
                response.raw_headers = [(bytes(n), bytes(v)) for n, v in value.headers]
                return response
            return value

        if is_async:

            @functools.wraps(endpoint)
            async def wrapper(**kwargs: Any) -> Any:
                c = cache or default_cache()
                k, t = key_of(kwargs)

                async def factory() -> Any:
                    return keep(await endpoint(**call_args(kwargs)))

                try:
                    fetched = c.get_or_fetch(k, factory, ttl=ttl, stale=stale, tags=t, distributed_lock=distributed_lock)
                    return returned(await fetched)
                except _Uncached as uncached:
                    return uncached.value

        else:

            @functools.wraps(endpoint)
            def wrapper(**kwargs: Any) -> Any:
                c = cache or default_cache()
                k, t = key_of(kwargs)
                try:
                    return returned(c.get_or_fetch_sync(k, lambda: keep(endpoint(**call_args(kwargs))), ttl=ttl, stale=stale, tags=t))
                except _Uncached as uncached:
                    return uncached.value

        if own_request is None:
            extra = inspect.Parameter("_larder_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)
            before = [p for p in params if p.kind != p.VAR_KEYWORD]
            after = [p for p in params if p.kind == p.VAR_KEYWORD]
            wrapper.__signature__ = signature.replace(parameters=[*before, extra, *after])  # type: ignore[attr-defined]
        return wrapper

    return decorate
