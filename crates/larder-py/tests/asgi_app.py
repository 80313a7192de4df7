"""A FastAPI app behind larder.asgi.CacheMiddleware, for test_asgi.py (run under uvicorn).

It sends no Cache-Control of its own except where a test needs it; the rules decide. Counters
of calls per endpoint are read through /_calls, which a bypass rule keeps out of the cache.
"""

import asyncio
import collections
import os

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

import larder
from larder.asgi import CacheMiddleware, HttpCache, cache_response

calls = collections.Counter()
release = asyncio.Event()

cache = larder.Cache.from_url(os.environ.get("LARDER_URL", "memory://"))
http_cache = HttpCache(
    cache,
    rules=[
        {"path": "/_*", "methods": ["GET", "POST"], "bypass": True},
        {"path": "/decorated", "bypass": True},
        {"path": "/items", "methods": ["POST", "PUT", "PATCH", "DELETE"], "invalidate": ["/items"]},
        {"path": "/slow", "ttl": "5m", "query": ["key"]},
        {"path": "/boom", "ttl": "5m", "stale": "10m"},
        {"path": "/search", "ttl": "5m", "key_body": "1KiB"},
        {"path": "/", "ttl": "5m"},
    ],
)

app = FastAPI()
app.add_middleware(CacheMiddleware, http_cache=http_cache)


class WorkerHeader:
    """Outside the cache: says which process answered, hit or not (test_asgi_workers.py)."""

    def __init__(self, inner):
        self.inner = inner
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope, receive, send):
        async def tagged(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-worker", self.pid)]}
            await send(message)

        await self.inner(scope, receive, tagged)


app.add_middleware(WorkerHeader)


@app.get("/_calls")
async def read_calls():
    return dict(calls)


@app.get("/_stats")
async def read_stats():
    return {"http": http_cache.stats(), "cache": cache.stats()}


@app.post("/_release")
async def do_release():
    release.set()
    return {}


@app.post("/_purge")
async def purge(prefix: str, request: Request):
    # Keys hold the request's host: a purge names it, as a URL.
    await http_cache.purge_prefix(f"http://{request.headers['host']}{prefix}")
    return {}


@app.get("/report")
async def report():
    calls["json report"] += 1
    return [{"id": i, "email": f"user{i}@example.test"} for i in range(400)]


@app.get("/slow")
async def slow(key: str = ""):
    calls["slow"] += 1
    await asyncio.sleep(0.3)
    return {"key": key, "n": calls["slow"]}


@app.get("/items/{item_id}")
async def item(item_id: int):
    calls[f"item{item_id}"] += 1
    return {"id": item_id, "n": calls[f"item{item_id}"]}


@app.post("/items/{item_id}")
async def update_item(item_id: int):
    return {"updated": item_id}


@app.post("/search")
async def search(request: Request):
    """A question in the body (search, inference): cached per body by the `key_body` rule."""
    body = await request.body()
    calls["search"] += 1
    n = calls["search"]
    await asyncio.sleep(0.2)
    return {"n": n, "size": len(body), "q": body[:40].decode(errors="replace")}


@app.get("/tagged")
async def etagged():
    calls["etag"] += 1
    return Response("versioned", headers={"etag": '"v1"'})


@app.get("/lang")
async def lang(request: Request):
    calls["lang"] += 1
    return Response(request.headers.get("accept-language", "none"), headers={"vary": "accept-language"})


@app.get("/cookie")
async def cookie():
    calls["cookie"] += 1
    response = Response("yours")
    response.set_cookie("session", "secret")
    return response


boom_fails = False


@app.post("/_boom_fails")
async def boom_switch():
    global boom_fails
    boom_fails = True
    return {}


@app.get("/boom")
async def boom():
    calls["boom"] += 1
    if boom_fails:
        raise RuntimeError("the app failed")
    return Response("fine", headers={"cache-control": "max-age=0"})


@app.get("/stream")
async def stream():
    calls["stream"] += 1

    async def parts():
        yield b"first|"
        await release.wait()
        for i in range(3):
            yield f"part{i}|".encode()

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/decorated/weather/{city}")
@cache_response(ttl="5m", cache=cache)
async def weather(city: str, units: str = "metric"):
    calls[f"weather:{city}"] += 1
    await asyncio.sleep(0.2)
    return {"city": city, "units": units, "n": calls[f"weather:{city}"]}


@app.get("/decorated/report")
@cache_response(ttl="5m", cache=cache)
def report(year: int, request: Request):
    calls["report"] += 1
    return Response(f"report {year} {calls['report']}", media_type="text/csv")
