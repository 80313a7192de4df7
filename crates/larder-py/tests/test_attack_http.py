"""Attack suite, larder.asgi: the cases every surface runs (tests/attacks/cases.json) against
tests/attacks/reflect_app.py wrapped in CacheMiddleware, under a real uvicorn. The same cases run
against the Rust layer (crates/larder-http/tests/attacks.rs) and larder-proxy
(crates/larder-proxy/tests/attacks.rs)."""

import http.client
import json
from pathlib import Path

import pytest

from conftest import Uvicorn

ATTACKS = Path(__file__).resolve().parents[3] / "tests" / "attacks"
CASES = json.loads((ATTACKS / "cases.json").read_text())


@pytest.fixture(scope="module")
def server():
    app = Uvicorn("reflect_app:app", cwd=ATTACKS, env={"LARDER_ASGI": "1"})
    yield app.port
    app.stop()


def get(port, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if body is None:
            conn.request("GET", path, headers=headers or {})
        else:
            conn.request("POST", path, body=body, headers={"content-type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


@pytest.mark.parametrize("index", range(len(CASES["poisoning"])), ids=[c["name"] for c in CASES["poisoning"]])
def test_no_request_header_poisons_what_the_next_client_gets(server, index):
    """Attacker first, then a victim's plain request for the same URL. Before: each of the eight
    forwarding headers was stored and replayed to the victim (the Python settings passed an
    empty list that replaced larder-http's)."""
    case = CASES["poisoning"][index]
    evil = case.get("evil", "evil")
    path = f"/poison/{index}"
    status, _, _ = get(server, path, case["attacker"])
    assert status == 200
    status, headers, body = get(server, path)
    assert status == 200
    assert evil not in body, f"the victim got the attacker's value ({headers.get('x-cache')}): {body}"
    assert get(server, path)[1]["x-cache"] == "HIT", "plain requests still share"

    # The same as a POST keyed on its body: one question, asked by the attacker first.
    path, question = f"/ask/{index}", b'{"q": "same"}'
    status, _, _ = get(server, path, case["attacker"], body=question)
    assert status == 200
    status, headers, body = get(server, path, body=question)
    assert status == 200 and "same" in json.loads(body)["body"], "the app got the body"
    assert evil not in body, f"the victim's POST got the attacker's value ({headers.get('x-cache')}): {body}"
    assert get(server, path, body=question)[1]["x-cache"] == "HIT", "plain POSTs still share"


@pytest.mark.parametrize("spelling", CASES["bypassed_spellings"])
def test_no_spelling_of_a_bypassed_route_is_cached(server, spelling):
    """Before: `GET /admin%2Fx` reached FastAPI's `/admin/...` route (uvicorn decodes `%2F`),
    missed the `/admin` bypass rule, and was stored under the catch-all rule."""
    for _ in range(2):
        status, headers, body = get(server, spelling)
        assert headers.get("x-cache") not in ("HIT", "STALE", "REVALIDATED"), f"{status}: {body}"


def test_the_app_routes_on_the_path_the_cache_matched(server):
    """Spellings of one path share its entry, and the app is given the canonical path."""
    status, headers, body = get(server, "/x/./y//z")
    assert status == 200 and headers["x-cache"] == "MISS"
    assert json.loads(body)["path"] == "/x/y/z"
    assert get(server, "/x/y/%7a")[1]["x-cache"] == "HIT"
    assert get(server, "/q/../x/y/z")[1]["x-cache"] == "HIT"


def test_a_reload_flood_costs_about_one_app_call_per_response_time(server):
    """50 clients sending `Cache-Control: no-cache` / `Pragma: no-cache` to one hot URL for 2 s.
    Before: one app call per request. Now a reload shares a response the app made after it
    arrived: at most one call per 100 ms the app takes (twice over for the flood's edges)."""
    import threading
    import time

    get(server, "/reload")
    before = json.loads(get(server, "/_calls")[2]).get("reload", 0)
    started = time.monotonic()
    answered = []

    def client(i):
        headers = {"cache-control": "no-cache"} if i % 2 == 0 else {"pragma": "no-cache"}
        n = 0
        while time.monotonic() - started < 2:
            assert get(server, "/reload", headers)[0] == 200
            n += 1
        answered.append(n)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    calls = json.loads(get(server, "/_calls")[2])["reload"] - before
    assert sum(answered) > 100
    assert calls <= 2 * int(elapsed / 0.1) + 2, f"{calls} app calls for {sum(answered)} reloads"
