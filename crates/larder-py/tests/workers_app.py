"""A FastAPI app on larder with a shared Redis, for the multi-worker test (uvicorn --workers 4):
each worker process has its own memory tier, kept coherent through Redis's backplane."""

import asyncio
import os

from fastapi import FastAPI

import larder
from larder.asgi import cache_response

cache = larder.Cache.from_url(os.environ["LARDER_URL"], namespace="workers")
app = FastAPI()


@app.get("/get/{key}")
async def get(key: str):
    return {"pid": os.getpid(), "value": await cache.get(key)}


@app.put("/set/{key}/{value}")
async def put(key: str, value: str):
    await cache.set(key, value, ttl=300)
    return {"pid": os.getpid()}


@app.delete("/delete/{key}")
async def delete(key: str):
    return {"pid": os.getpid(), "found": await cache.delete(key)}


@app.get("/fetch/{key}")
async def fetch(key: str):
    async def compute():
        return {"computed_by": os.getpid()}

    return await cache.get_or_fetch(key, compute, ttl=300)


# One cache per app: `@cached` and `cache_response` without `cache=` use this one.
larder.set_default_cache(cache)
CALLS_FILE = os.environ.get("CALLS_FILE")


def _called(what: str) -> None:
    # O_APPEND: each worker's line lands whole, so the lines count the calls.
    with open(CALLS_FILE, "a") as f:
        f.write(f"{what} {os.getpid()}\n")


@larder.cached(ttl=300, distributed_lock=20)
async def report(name: str) -> dict:
    _called(f"report:{name}")
    await asyncio.sleep(0.5)
    return {"report": name, "by": os.getpid()}


@app.get("/report/{name}")
async def get_report(name: str):
    return await report(name)


@app.get("/page/{name}")
@cache_response(ttl=300, distributed_lock=20)
async def page(name: str):
    _called(f"page:{name}")
    await asyncio.sleep(0.5)
    return {"page": name, "by": os.getpid()}
