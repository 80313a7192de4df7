from datetime import timedelta
from typing import Any, Awaitable, Callable, Coroutine, Dict, Generator, List, Optional, Sequence, Union

Duration = Union[int, float, str, timedelta]

class Ready:
    """An awaitable that is already done (a memory hit)."""
    def __await__(self) -> Generator[Any, None, Any]: ...

class Cache:
    @staticmethod
    def from_url(
        url: str = "memory://",
        *,
        max_entries: Optional[int] = None,
        max_bytes: Optional[int] = None,
        ttl: Optional[Duration] = None,
        stale: Optional[Duration] = None,
        namespace: Optional[str] = None,
        pickle: bool = False,
    ) -> "Cache": ...
    def get(self, key: str) -> Coroutine[Any, Any, Any]: ...
    def get_sync(self, key: str) -> Any: ...
    def peek(self, key: str, default: Any = None) -> Any: ...
    def set(
        self,
        key: str,
        value: Any,
        *,
        ttl: Optional[Duration] = None,
        stale: Optional[Duration] = None,
        tags: Optional[Sequence[str]] = None,
    ) -> Coroutine[Any, Any, None]: ...
    def set_sync(
        self,
        key: str,
        value: Any,
        *,
        ttl: Optional[Duration] = None,
        stale: Optional[Duration] = None,
        tags: Optional[Sequence[str]] = None,
    ) -> None: ...
    def delete(self, key: str) -> Coroutine[Any, Any, bool]: ...
    def delete_sync(self, key: str) -> bool: ...
    def invalidate_tag(self, tag: str) -> Coroutine[Any, Any, None]: ...
    def invalidate_tags(self, tags: Sequence[str]) -> Coroutine[Any, Any, None]: ...
    def clear(self, *, namespace: Optional[str] = None) -> Coroutine[Any, Any, None]: ...
    def namespace(self, namespace: str) -> "Cache": ...
    def get_many(self, keys: Sequence[str]) -> Coroutine[Any, Any, List[Any]]: ...
    def set_many(self, items: Dict[str, Any]) -> Coroutine[Any, Any, None]: ...
    def get_or_fetch(
        self,
        key: str,
        factory: Callable[[], Awaitable[Any]],
        *,
        ttl: Optional[Duration] = None,
        stale: Optional[Duration] = None,
        soft_timeout: Optional[Duration] = None,
        hard_timeout: Optional[Duration] = None,
        eager_refresh: Optional[float] = None,
        distributed_lock: Optional[Duration] = None,
        tags: Optional[Sequence[str]] = None,
    ) -> Coroutine[Any, Any, Any]: ...
    def get_or_fetch_sync(
        self,
        key: str,
        factory: Callable[[], Any],
        *,
        ttl: Optional[Duration] = None,
        stale: Optional[Duration] = None,
        tags: Optional[Sequence[str]] = None,
    ) -> Any: ...
    def stats(self) -> Dict[str, Union[int, bool]]: ...
