"""The weather example of larder's use cases (aiocache's `@cached(ttl=3600)` around an API call),
on larder. The original calls OpenWeather with aiohttp; this one simulates the 300 ms call so it
runs offline. Point LARDER_URL at Redis to share the cache between processes.

    python examples/python/weather.py
    LARDER_URL=redis://127.0.0.1:6379 python examples/python/weather.py
"""

import asyncio
import os
import time

import larder

larder.set_default_cache(larder.Cache.from_url(os.environ.get("LARDER_URL", "memory://")))
api_calls = 0


@larder.cached(ttl="1h", key="weather:{city}", stale="1d")
async def get_weather(city: str) -> dict:
    global api_calls
    api_calls += 1
    await asyncio.sleep(0.3)  # the HTTP call to the weather API
    return {"city": city, "temp_c": 21.5, "conditions": "clear"}


async def main() -> None:
    for attempt in range(3):
        start = time.perf_counter()
        # Ten concurrent requests for the same city: one API call.
        results = await asyncio.gather(*[get_weather("Lisbon") for _ in range(10)])
        took = (time.perf_counter() - start) * 1000
        print(f"attempt {attempt}: {results[0]} in {took:.1f} ms, API calls so far: {api_calls}")


if __name__ == "__main__":
    asyncio.run(main())
