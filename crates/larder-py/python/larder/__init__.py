"""larder: the larder cache engine from Python.

    cache = larder.Cache.from_url("memory://", ttl="5m")
    user = await cache.get_or_fetch(f"user:{uid}", lambda: load_user(uid))

    @larder.cached(ttl="1h", key="weather:{city}")
    async def get_weather(city: str) -> dict: ...

Cached objects come back as the same object from the memory tier: treat them as immutable, as
cachetools users already do.
"""

import atexit as _atexit
import collections.abc as _abc

from . import _larder
from ._cached import cached, default_cache, set_default_cache
from ._larder import Cache, Ready

# Before the interpreter finalizes, let larder's runtime threads finish what they are handing to
# Python, and stop them from starting more (a thread taking the GIL during finalization would
# abort the process).
_atexit.register(_larder.drain)

# larder's awaitables start their work when awaited, like coroutines, and are registered as such
# so asyncio.run, gather and create_task take them.
_abc.Coroutine.register(_larder.Deferred)
_abc.Coroutine.register(_larder.Ready)

__all__ = ["Cache", "Ready", "cached", "default_cache", "set_default_cache"]
