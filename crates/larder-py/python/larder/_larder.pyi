from datetime import timedelta
from typing import Any, Awaitable, Callable, Coroutine, Dict, Generator, List, Optional, Sequence, Tuple, Union

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

# The response cache behind larder.asgi (use larder.asgi.HttpCache and CacheMiddleware).
class HttpCache:
    def __init__(
        self,
        cache: Cache,
        *,
        ttl: Optional[Duration] = None,
        rules: Sequence[str] = ...,
        namespace: Optional[str] = None,
        max_body: Optional[int] = None,
        status_header: Optional[str] = "x-cache",
        cache_status: Optional[str] = "larder",
        tag_header: Optional[str] = "surrogate-key",
        purge_prefix_depth: int = 3,
        keyed_headers: Sequence[str] = ...,
        key_cookies: Sequence[str] = ...,
        ignore_cookies: Sequence[str] = ...,
        response_timeout: Optional[Duration] = None,
        body_idle_timeout: Optional[Duration] = None,
        distributed_lock: Union[bool, Duration, None] = None,
        fixed_host: Optional[str] = None,
        fail_safe_throttle: Optional[Duration] = None,
    ) -> None: ...
    def _engine(self, start: Callable[..., None]) -> "Engine": ...
    def purge_url(self, url: str) -> Coroutine[Any, Any, bool]: ...
    def purge_prefix(self, prefix: str) -> Coroutine[Any, Any, None]: ...
    def purge_tag(self, tag: str) -> Coroutine[Any, Any, None]: ...
    def purge_all(self) -> Coroutine[Any, Any, None]: ...
    def stats(self) -> Dict[str, int]: ...

class Engine:
    def handle(
        self, scope: Dict[str, Any], receive: Callable[[], Awaitable[Any]]
    ) -> Union[None, Tuple[int, List[Tuple[bytes, bytes]], bytes], Coroutine[Any, Any, "AsgiResponse"]]: ...

class AsgiResponse:
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> List[Tuple[bytes, bytes]]: ...
    def next_chunk(self) -> Union[None, bytes, Coroutine[Any, Any, Optional[bytes]]]: ...

class Sink:
    def send(self, message: Dict[str, Any]) -> Coroutine[Any, Any, None]: ...
    def fail(self, exc: BaseException) -> None: ...
    def close(self) -> None: ...
