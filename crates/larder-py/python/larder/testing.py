"""larder in tests: switch every larder cache off, or clear them all between tests.

Switched off, `@cached` and `cache_response` call the function every time and store nothing,
`Cache.get_or_fetch` runs its factory, and `CacheMiddleware` hands every request to the app; the
caches' own `get`, `set` and `delete` still work. Cleared, every `larder.Cache` this process made
(and the responses of every `HttpCache`) is emptied; on a shared Redis that is each cache's
namespace there.

With pytest (the plugin is registered when larder is installed), use the fixtures:

    def test_prices_are_fresh(client, larder_disabled):   # no caching in this test
        assert client.get("/prices").json() == current_prices()

    def test_cached_page(client, larder_cleared):          # an empty cache before and after
        client.get("/page")
        assert client.get("/page").headers["x-cache"] == "HIT"

Outside pytest, `with larder.testing.disabled(): ...`, and `larder.testing.clear_all()` (or
`await larder.testing.aclear_all()` inside a running event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Iterator

from . import _larder, _registry

__all__ = ["disabled", "clear_all", "aclear_all"]


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Switches every larder cache off inside the block (and back to what it was after)."""
    before = _larder._switch_off(True)
    try:
        yield
    finally:
        _larder._switch_off(before)


async def aclear_all() -> None:
    """Empties every cache this process made and every response cache's responses."""
    for cache in list(_registry._caches):
        await cache.clear()
    for http_cache in list(_registry._http_caches):
        await http_cache.purge_all()


def clear_all() -> None:
    """`aclear_all` for code without a running event loop (a sync test or fixture)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(aclear_all())
        return
    raise RuntimeError("an event loop is running here: use `await larder.testing.aclear_all()`")


try:
    import pytest
except ImportError:  # pragma: no cover - larder.testing outside pytest
    pass
else:

    @pytest.fixture
    def larder_disabled() -> Iterator[None]:
        """Every larder cache switched off for the test."""
        with disabled():
            yield

    @pytest.fixture
    def larder_cleared() -> Iterator[None]:
        """Every larder cache emptied before the test and after it."""
        clear_all()
        yield
        clear_all()
