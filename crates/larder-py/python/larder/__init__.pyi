from typing import Any, Callable, Iterable, Optional, TypeVar

from ._larder import Cache as Cache, Ready as Ready

F = TypeVar("F", bound=Callable[..., Any])

def cached(
    ttl: Any = None,
    *,
    key: Optional[str] = None,
    skip: Iterable[str] = (),
    tags: Iterable[str] = (),
    unless: Optional[Callable[[Any], bool]] = None,
    cache: Optional[Cache] = None,
    stale: Any = None,
) -> Callable[[F], F]: ...
def set_default_cache(cache: Cache) -> None: ...
def default_cache() -> Cache: ...
