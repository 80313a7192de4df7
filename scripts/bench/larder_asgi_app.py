"""The example app's /users endpoint cached inside the app by larder for Python, with the same
lifetime as the other sides of scripts/bench-fastapi.sh (600 s), two ways:

    app          the endpoint behind larder.asgi.CacheMiddleware (a rule: path /users, ttl 600s),
                 added with app.add_middleware (inside FastAPI's own middleware stack)
    outer        the same, wrapping the FastAPI app from outside: what uvicorn runs is the
                 middleware, so a hit never enters FastAPI or Starlette
    decorated    the endpoint under larder.asgi.cache_response(ttl="600s")

Run from examples/fastapi so `app` imports the same data."""

from fastapi import FastAPI

import larder
from app import USERS
from larder.asgi import CacheMiddleware, cache_response

app = FastAPI()
app.add_middleware(
    CacheMiddleware,
    cache=larder.Cache.from_url("memory://"),
    rules=[{"path": "/users", "ttl": "600s"}],
)


@app.get("/users")
async def list_users(skip: int = 0, limit: int = 10):
    return list(USERS.values())[skip : skip + limit]


plain = FastAPI()


@plain.get("/users")
async def list_users_plain(skip: int = 0, limit: int = 10):
    return list(USERS.values())[skip : skip + limit]


outer = CacheMiddleware(
    plain,
    cache=larder.Cache.from_url("memory://"),
    rules=[{"path": "/users", "ttl": "600s"}],
)


decorated = FastAPI()


@decorated.get("/users")
@cache_response(ttl="600s", cache=larder.Cache.from_url("memory://"))
async def list_users_decorated(skip: int = 0, limit: int = 10):
    return list(USERS.values())[skip : skip + limit]
