from datetime import timedelta
from typing import Any, Callable, Iterable, Optional, TypeVar, Union, overload

from ._larder import Cache as Cache, Ready as Ready

F = TypeVar("F", bound=Callable[..., Any])
Duration = Union[int, float, str, timedelta]

@overload
def cached(ttl: F) -> F: ...
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
) -> Callable[[F], F]: ...
def set_default_cache(cache: Cache) -> None: ...
def default_cache() -> Cache: ...
