"""The origin the HTTP attack suite caches (tests/attacks/cases.json): a FastAPI app that reflects
every request header into its body, as origins reflect forwarding headers into links, and an
`/admin` route that a bypass rule keeps out of the cache. It sends no Cache-Control: the rules
decide. Every call is counted, per path, in `/_calls`.

Run behind larder-proxy as it is (`uvicorn reflect_app:app`), or with `LARDER_ASGI=1` wrapped in
larder.asgi's CacheMiddleware with the cases' rules."""

import asyncio
import collections
import json
import os
from pathlib import Path

from fastapi import FastAPI, Request

CASES = json.loads((Path(__file__).parent / "cases.json").read_text())

app = FastAPI()
calls = collections.Counter()


@app.get("/_calls")
async def read_calls():
    return dict(calls)


@app.get("/reload")
async def reload():
    """A hot page the reload flood asks for: 100 ms of work per call."""
    calls["reload"] += 1
    await asyncio.sleep(0.1)
    return {"reload": calls["reload"]}


@app.get("/admin/{rest:path}")
async def admin(rest: str):
    calls["admin"] += 1
    return {"admin": rest, "n": calls["admin"]}


@app.post("/ask/{rest:path}")
async def ask(rest: str, request: Request):
    """A question in the body (the key_body rule): the headers and the body reflected."""
    calls[request.url.path] += 1
    body = (await request.body()).decode(errors="replace")
    return {"path": request.url.path, "headers": dict(request.headers), "body": body, "n": calls[request.url.path]}


@app.get("/{rest:path}")
async def reflect(rest: str, request: Request):
    calls[request.url.path] += 1
    return {"path": request.url.path, "headers": dict(request.headers), "n": calls[request.url.path]}


if os.environ.get("LARDER_ASGI"):
    import larder
    from larder.asgi import CacheMiddleware

    app.add_middleware(
        CacheMiddleware,
        cache=larder.Cache.from_url("memory://"),
        rules=CASES["rules"],
        ignore_cookies=CASES["ignore_cookies"],
    )
