"""A cache hit through each library's own decorator on a plain `def`, per call, in one run:
larder's @cached beside cachetools, moka-py and cachebox (those that install here), with a bare
dict.get for scale. Best of ROUNDS rounds of N calls of one key.

    target/venv/bin/python crates/larder-py/bench/sync_decorators.py     # N=200000 ROUNDS=5
"""

import os
import time

N = int(os.environ.get("N", "200000"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))


def work(city):
    return {"city": city, "temp": 21.5}


def sides():
    out = {}
    import larder

    larder.set_default_cache(larder.Cache.from_url("memory://"))

    @larder.cached(ttl="1h")
    def with_larder(city):
        return work(city)

    out["larder @cached"] = with_larder

    import cachetools

    @cachetools.cached(cachetools.TTLCache(maxsize=1000, ttl=3600))
    def with_cachetools(city):
        return work(city)

    out["cachetools @cached"] = with_cachetools

    try:
        import moka_py

        @moka_py.cached(maxsize=1000, ttl=3600)
        def with_moka(city):
            return work(city)

        out["moka-py @cached"] = with_moka
    except Exception as e:  # noqa: BLE001
        print("moka-py skipped:", e)

    try:
        import cachebox

        @cachebox.cached(cachebox.TTLCache(1000, 3600))
        def with_cachebox(city):
            return work(city)

        out["cachebox @cached"] = with_cachebox
    except Exception as e:  # noqa: BLE001
        print("cachebox skipped:", e)

    plain = {"Lisbon": work("Lisbon")}
    out["dict.get"] = plain.get
    return out


table = sides()
for fn in table.values():
    fn("Lisbon")
    fn("Lisbon")
best = {name: float("inf") for name in table}
for _ in range(ROUNDS):
    for name, fn in table.items():
        start = time.perf_counter()
        for _ in range(N):
            fn("Lisbon")
        best[name] = min(best[name], (time.perf_counter() - start) / N)
for name, secs in sorted(best.items(), key=lambda kv: kv[1]):
    print(f"{name:28s} {secs * 1e6:8.3f} µs per hit")
