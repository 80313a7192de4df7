"""The caches this process made, held weakly, for `larder.testing.clear_all`: every
`larder.Cache` (from `Cache.from_url` and `cache.namespace`) and every `larder.asgi.HttpCache`."""

import weakref

_caches: "weakref.WeakSet" = weakref.WeakSet()
_http_caches: "weakref.WeakSet" = weakref.WeakSet()


def add_cache(cache) -> None:
    _caches.add(cache)


def add_http_cache(http_cache) -> None:
    _http_caches.add(http_cache)
