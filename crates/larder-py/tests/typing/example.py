"""Checked by mypy --strict in scripts/test.sh (not run): `@cached` and `cache_response` keep
the decorated function's signature for type checkers and editors. Each `type: ignore[...]`
marks a line that must be an error (mypy's warn_unused_ignores fails the check if it is not)."""

from typing_extensions import assert_type

import larder
from larder.asgi import cache_response


@larder.cached(ttl="1h", key="weather:{city}")
async def weather(city: str, days: int = 1) -> dict[str, float]:
    return {"temp": 21.5}


@larder.cached
def square(x: int) -> int:
    return x * x


@cache_response(ttl=60)
async def page(item_id: int) -> dict[str, int]:
    return {"id": item_id}


async def uses() -> None:
    assert_type(await weather("Berlin"), dict[str, float])
    assert_type(await weather("Berlin", days=3), dict[str, float])
    assert_type(await weather.invalidate("Berlin"), bool)
    assert_type(weather.cache_key("Berlin"), str)
    assert_type(square(3), int)
    assert_type(square.invalidate(3), bool)
    assert_type(await page(7), dict[str, int])

    await weather(42)  # type: ignore[arg-type]
    await weather("Berlin", dayz=3)  # type: ignore[call-arg]
    square("3")  # type: ignore[arg-type]
    await page("7")  # type: ignore[arg-type]
