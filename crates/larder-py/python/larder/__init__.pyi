from datetime import timedelta
from typing import Any, Awaitable, Callable, Coroutine, Generic, Iterable, Optional, TypeVar, Union, overload

from typing_extensions import ParamSpec, Protocol

from ._larder import Cache as Cache, Ready as Ready

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
Duration = Union[int, float, str, timedelta]

class AsyncCachedFunction(Generic[P, T]):
    """An `async def` under `@cached`: called as the function was, with its cache's helpers."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T]: ...
    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, bool]: ...
    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T]: ...
    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str: ...

class CachedFunction(Generic[P, R]):
    """A `def` under `@cached`: called as the function was, with its cache's helpers."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool: ...
    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str: ...

class _Cached(Protocol):
    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, T]]) -> AsyncCachedFunction[P, T]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> CachedFunction[P, R]: ...

@overload
def cached(ttl: Callable[P, Coroutine[Any, Any, T]]) -> AsyncCachedFunction[P, T]: ...
@overload
def cached(ttl: Callable[P, R]) -> CachedFunction[P, R]: ...
@overload
def cached(
    ttl: Optional[Duration] = None,
    *,
    key: Optional[str] = None,
    skip: Iterable[str] = (),
    tags: Iterable[str] = (),
    unless: Optional[Callable[[Any], bool]] = None,
    cache: Optional[Cache] = None,
    stale: Optional[Duration] = None,
    distributed_lock: Optional[Duration] = None,
) -> _Cached: ...
def set_default_cache(cache: Cache) -> None: ...
def default_cache() -> Cache: ...
