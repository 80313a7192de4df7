"""larder.asgi under uvicorn: CacheMiddleware (RFC 9111 engine of larder-http: keys, Vary,
ETag/304, Age, Cache-Status, rules, purge, streaming recorded chunk by chunk, coalescing) and
cache_response (keyed on path, sorted query and the endpoint's arguments)."""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import free_port, wait_port

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "asgi_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=HERE, env=dict(os.environ),
    )
    try:
        wait_port(port, "uvicorn", limit=30)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(port, path, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def calls(port):
    return json.loads(get(port, "/_calls")[2])


def test_a_miss_is_stored_and_the_next_request_is_a_hit(server):
    status, headers, body = get(server, "/items/1")
    assert status == 200 and json.loads(body)["n"] == 1
    assert headers["x-cache"] == "MISS"
    assert "fwd=uri-miss" in headers["cache-status"] and "stored" in headers["cache-status"]
    status, headers, body = get(server, "/items/1")
    assert json.loads(body)["n"] == 1, "answered from the cache"
    assert headers["x-cache"] == "HIT" and "larder; hit" in headers["cache-status"]
    assert "age" in headers
    assert calls(server)["item1"] == 1


def test_concurrent_cold_requests_make_one_call_and_query_order_shares_an_entry(server):
    with ThreadPoolExecutor(50) as pool:
        bodies = list(pool.map(lambda _: get(server, "/slow?key=a&utm=x")[2], range(50)))
    assert {json.loads(b)["n"] for b in bodies} == {1}
    assert calls(server)["slow"] == 1
    # Only `key` is keyed (the rule's query list), so another tracker and another order hit.
    _, headers, body = get(server, "/slow?utm=y&key=a")
    assert headers["x-cache"] == "HIT" and json.loads(body)["n"] == 1
    _, headers, _ = get(server, "/slow?key=b")
    assert headers["x-cache"] == "MISS"


def test_a_conditional_request_is_answered_304_from_the_cache(server):
    get(server, "/tagged")
    status, headers, body = get(server, "/tagged", {"if-none-match": '"v1"'})
    assert status == 304 and body == b""
    assert headers["etag"] == '"v1"'
    assert calls(server)["etag"] == 1


def test_vary_keeps_one_variant_per_language(server):
    for lang in ["en", "fr", "en", "fr"]:
        _, _, body = get(server, "/lang", {"accept-language": lang})
        assert body == lang.encode()
    assert calls(server)["lang"] == 2


def test_a_write_invalidates_the_rules_prefixes(server):
    get(server, "/items/3")
    assert get(server, "/items/3")[1]["x-cache"] == "HIT"
    status, _, _ = get(server, "/items/3", method="POST")
    assert status == 200
    _, headers, body = get(server, "/items/3")
    assert headers["x-cache"] == "MISS" and json.loads(body)["n"] == 2


def test_purge_by_prefix_through_the_http_cache(server):
    get(server, "/items/4")
    assert get(server, "/items/4")[1]["x-cache"] == "HIT"
    get(server, "/_purge?prefix=/items", method="POST")
    assert get(server, "/items/4")[1]["x-cache"] == "MISS"


def test_a_response_that_sets_a_cookie_is_never_stored(server):
    for _ in range(2):
        _, headers, _ = get(server, "/cookie")
        assert "set-cookie" in headers
    assert calls(server)["cookie"] == 2


def test_an_app_error_is_a_500_and_the_stale_copy_stands_in(server):
    status, _, body = get(server, "/boom")
    assert status == 200 and body == b"fine"
    get(server, "/_boom_fails", method="POST")
    # The stored copy is stale (max-age=0); the app raises; the rule's stale window serves it.
    status, headers, body = get(server, "/boom")
    assert status == 200 and body == b"fine"
    assert headers["x-cache"] == "STALE", headers
    assert "detail=origin-error" in headers["cache-status"], headers
    # Nothing stored for this URL: the app's exception reaches uvicorn, which answers 500.
    status, _, _ = get(server, "/boom?other")
    assert status == 500


def read_stream(port, out, started):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    # The Host http.client sends too: it is part of the key.
    sock.sendall(f"GET /stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if b"first|" in data:
            started.set()
    out.append(data)
    sock.close()


def test_a_stream_reaches_clients_as_it_is_produced_and_is_recorded_once(server):
    outs, firsts = [], [threading.Event(), threading.Event()]
    readers = [threading.Thread(target=read_stream, args=(server, outs, e)) for e in firsts]
    readers[0].start()
    assert firsts[0].wait(10), "the first part arrives while the app still holds the rest"
    readers[1].start()
    assert firsts[1].wait(10), "a second client reads the same recording"
    assert calls(server)["stream"] == 1
    get(server, "/_release", method="POST")
    for r in readers:
        r.join(10)
    for data in outs:
        assert data.replace(b"\r\n", b"").find(b"part2|") > 0
    _, headers, body = get(server, "/stream")
    assert headers["x-cache"] == "HIT", headers["cache-status"]
    assert body == b"first|part0|part1|part2|"
    assert calls(server)["stream"] == 1


def test_cache_response_keys_on_path_sorted_query_and_arguments(server):
    with ThreadPoolExecutor(20) as pool:
        bodies = list(pool.map(lambda _: get(server, "/decorated/weather/oslo?units=si")[2], range(20)))
    assert {json.loads(b)["n"] for b in bodies} == {1}, "one call for concurrent requests"
    assert json.loads(get(server, "/decorated/weather/lima?units=si")[2])["city"] == "lima"
    assert json.loads(get(server, "/decorated/weather/oslo")[2])["units"] == "metric"
    counted = calls(server)
    assert counted["weather:oslo"] == 2 and counted["weather:lima"] == 1
    # A def endpoint returning a Response, with the request among its arguments.
    first = get(server, "/decorated/report?year=2025&x=1")
    again = get(server, "/decorated/report?x=1&year=2025")
    assert first[2] == again[2] == b"report 2025 1"
    assert again[1]["content-type"].startswith("text/csv")
    assert get(server, "/decorated/report?year=2026")[2] == b"report 2026 2"


def post(port, path, body, headers=None, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"content-type": "application/json", **(headers or {})}
        if chunked:
            conn.request("POST", path, body=iter([body]), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_a_post_under_a_key_body_rule_is_answered_per_body(server):
    before = calls(server).get("search", 0)
    status, headers, body = post(server, "/search", b'{"q": "rust"}')
    assert status == 200 and headers["x-cache"] == "MISS"
    first = json.loads(body)
    assert first["q"] == '{"q": "rust"}', "the app got the body"
    status, headers, body = post(server, "/search", b'{"q": "rust"}')
    assert headers["x-cache"] == "HIT" and json.loads(body) == first
    _, headers, body = post(server, "/search", b'{"q": "go"}')
    assert headers["x-cache"] == "MISS" and json.loads(body)["q"] == '{"q": "go"}'
    # The same bytes as another type are another question.
    _, headers, _ = post(server, "/search", b'{"q": "rust"}', {"content-type": "text/plain"})
    assert headers["x-cache"] == "MISS"
    assert calls(server)["search"] == before + 3


def test_concurrent_posts_of_one_body_make_one_call(server):
    before = calls(server).get("search", 0)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: post(server, "/search", b'{"q": "together"}'), range(20)))
    assert {a[0] for a in answers} == {200}
    assert len({a[2] for a in answers}) == 1, "one answer for all"
    assert calls(server)["search"] == before + 1


def test_posts_with_credentials_or_bodies_the_rule_cannot_key_reach_the_app_whole(server):
    before = calls(server).get("search", 0)
    for headers, detail in [({"authorization": "Bearer t"}, "authorization"), ({"cookie": "session=1"}, "cookie")]:
        for _ in range(2):
            _, got, _ = post(server, "/search", b'{"q": "mine"}', headers)
            assert got["x-cache"] == "BYPASS" and f"detail={detail}" in got["cache-status"], got
    big = b'{"q": "' + b"x" * 2000 + b'"}'
    for _ in range(2):
        _, got, body = post(server, "/search", big)
        assert f"detail=body-too-large" in got["cache-status"]
        assert json.loads(body)["size"] == len(big), "the app got all of it"
    for _ in range(2):
        _, got, body = post(server, "/search", b'{"q": "streamed"}', chunked=True)
        assert "detail=body-unsized" in got["cache-status"]
        assert json.loads(body)["size"] == len(b'{"q": "streamed"}')
    assert calls(server)["search"] == before + 8


def test_a_body_that_ends_short_of_its_length_goes_to_the_app_as_sent(server):
    # Declares 20 bytes, sends 5 and closes: the middleware cannot key it; the app sees the
    # client leave, and nothing is stored.
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
        s.sendall(b"POST /search HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{\"q\":")
        s.shutdown(socket.SHUT_WR)
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    status, headers, _ = post(server, "/search", b'{"q":')
    assert status == 200 and headers["x-cache"] == "MISS"


def test_a_json_response_is_stored_compressed_once_and_served_as_each_client_accepts(server):
    import gzip

    # A client that takes gzip first; then one that takes nothing gets plain JSON, not the
    # stored gzip bytes (the copy never reaches a client that cannot read it).
    status, headers, body = get(server, "/report", {"accept-encoding": "gzip, br"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    expected = json.loads(gzip.decompress(body))
    assert len(expected) == 400
    for _ in range(50):
        if get(server, "/report")[1]["x-cache"] == "HIT":
            break
        time.sleep(0.02)
    status, headers, plain = get(server, "/report")
    assert headers["x-cache"] == "HIT" and "content-encoding" not in headers
    assert json.loads(plain) == expected
    assert headers["vary"] == "accept-encoding"
    _, headers, packed = get(server, "/report", {"accept-encoding": "gzip"})
    assert headers["content-encoding"] == "gzip" and len(packed) * 4 < len(plain)
    assert json.loads(gzip.decompress(packed)) == expected
    _, headers, _ = get(server, "/report", {"accept-encoding": "br"})
    assert headers["content-encoding"] == "br"
    assert calls(server)["json report"] == 1
