"""The aiocache fibonacci of larder's use cases, on larder: fibonacci(100) makes 101 calls.

    pip install crates/larder-py      # or: scripts/test.sh builds it into target/venv
    python examples/python/fibonacci.py 100
"""

import asyncio
import sys
import time

import larder

calls = 0


@larder.cached(ttl="1h")
async def fibonacci(n: int) -> int:
    global calls
    calls += 1
    if n < 2:
        return n
    return await fibonacci(n - 1) + await fibonacci(n - 2)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    start = time.perf_counter()
    result = asyncio.run(fibonacci(n))
    print(f"fibonacci({n}) = {result}: {calls} calls in {time.perf_counter() - start:.4f} s")
