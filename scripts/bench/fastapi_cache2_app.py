"""The example app's /users endpoint cached inside the app by fastapi-cache2 (in-memory backend),
with the same lifetime as the proxies' rule (600 s): the peer scripts/bench-fastapi.sh measures
larder-proxy against. Run from examples/fastapi so `app` imports the same data."""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_cache import FastAPICache
from fastapi_cache.backends.inmemory import InMemoryBackend
from fastapi_cache.decorator import cache

from app import USERS


@asynccontextmanager
async def lifespan(_: FastAPI):
    FastAPICache.init(InMemoryBackend(), prefix="bench")
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/users")
@cache(expire=600)
async def list_users(skip: int = 0, limit: int = 10):
    return list(USERS.values())[skip : skip + limit]
