"""larder: the larder cache engine from Python.

    cache = larder.Cache.from_url("memory://", ttl="5m")
    user = await cache.get_or_fetch(f"user:{uid}", lambda: load_user(uid))

    @larder.cached(ttl="1h", key="weather:{city}")
    async def get_weather(city: str) -> dict: ...

Cached objects come back as the same object from the memory tier: treat them as immutable, as
cachetools users already do.
"""

from ._cached import cached, default_cache, set_default_cache
from ._larder import Cache, Ready

__all__ = ["Cache", "Ready", "cached", "default_cache", "set_default_cache"]
