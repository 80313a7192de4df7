"""A FastAPI app on larder with a shared Redis, for the multi-worker test (uvicorn --workers 4):
each worker process has its own memory tier, kept coherent through Redis's backplane."""

import os

from fastapi import FastAPI

import larder

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
