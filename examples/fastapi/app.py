"""The endpoints of larder's use cases, written the way FastAPI apps write them: no Cache-Control
anywhere. larder-proxy caches them from the outside with the rules in larder.toml:

    uvicorn app:app --port 8000
    larder-proxy --upstream http://127.0.0.1:8000 --config examples/fastapi/larder.toml

A few endpoints under /_test exist for the test suite (origin call counts, releasing the
stream); the proxy's rules pass them by uncached.
"""

import asyncio
import os
from collections import Counter

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from jinja2 import Environment, select_autoescape

app = FastAPI()

# How long the "expensive" call takes (the use case's asyncio.sleep(2)).
SLOW_SECONDS = float(os.environ.get("SLOW_SECONDS", "2"))

USERS = {i: {"id": i, "name": f"user {i}", "email": f"user{i}@example.test"} for i in range(1, 101)}

CALLS: Counter = Counter()


@app.middleware("http")
async def count_calls(request: Request, call_next):
    if not request.url.path.startswith("/_test"):
        CALLS[request.url.path] += 1
    return await call_next(request)


async def _get_expensive_resource(key: str) -> bool:
    await asyncio.sleep(SLOW_SECONDS)
    return True


@app.get("/")
async def get(key: str):
    """The slow endpoint of the first use case: 2 seconds per call, uncached."""
    return await _get_expensive_resource(key)


@app.get("/users")
async def list_users(skip: int = 0, limit: int = 10):
    return list(USERS.values())[skip : skip + limit]


@app.get("/users/{user_id}")
async def get_user(user_id: int):
    return USERS.get(user_id, {"error": "not found"})


@app.post("/users/{user_id}")
async def update_user(user_id: int, changes: dict):
    user = USERS.setdefault(user_id, {"id": user_id})
    user.update({k: v for k, v in changes.items() if k in ("name", "email")})
    return user


@app.post("/search")
async def search(query: dict):
    """A search whose question is its JSON body (the shape of search and inference APIs): the
    rule's `key_body` caches it per body. Slow, like the first endpoint."""
    await asyncio.sleep(SLOW_SECONDS / 4)
    words = str(query.get("q", "")).lower().split()
    hits = [u for u in USERS.values() if any(w in u["name"] for w in words)]
    return {"q": query.get("q"), "size": len(str(query)), "hits": hits[: int(query.get("limit", 5))]}


PAGE = Environment(autoescape=select_autoescape()).from_string(
    "<!doctype html><title>{{ title }}</title><h1>{{ title }}</h1>"
    "<ul>{% for u in users %}<li>{{ u.name }} &lt;{{ u.email }}&gt;</li>{% endfor %}</ul>"
)


@app.get("/page/{name}", response_class=HTMLResponse)
async def page(name: str):
    """A Jinja page, rendered on every call."""
    return PAGE.render(title=name, users=list(USERS.values())[:20])


RELEASE = asyncio.Event()


@app.get("/stream")
async def stream():
    """A StreamingResponse: the first chunk at once, the rest once /_test/release is called
    (so a test can tell whether the first chunk reached the client before the stream ended)."""

    async def chunks():
        yield b"chunk 0\n"
        await asyncio.wait_for(RELEASE.wait(), timeout=30)
        for i in range(1, 5):
            await asyncio.sleep(0.01)
            yield f"chunk {i}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


@app.post("/_test/release")
async def release():
    RELEASE.set()
    return {"released": True}


@app.get("/_test/calls")
async def calls():
    return dict(CALLS)
