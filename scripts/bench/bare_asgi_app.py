"""A bare ASGI app that answers every request with the bytes the example app's
/users?skip=0&limit=18 returns (rendered once, at import): the ceiling of any cache inside the
app under the same uvicorn, for scripts/bench-asgi.sh. Run from examples/fastapi."""

from fastapi.responses import JSONResponse

from app import USERS

BODY = JSONResponse(list(USERS.values())[0:18]).body
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
