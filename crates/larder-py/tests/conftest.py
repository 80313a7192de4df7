"""Fixtures: a real redis-server on a free loopback port, started and stopped per test module."""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, name, limit=10.0):
    """Waits until something accepts connections on 127.0.0.1:port."""
    deadline = time.time() + limit
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert time.time() < deadline, f"{name} did not start"
            time.sleep(0.02)


def until(predicate, limit=20.0):
    """Polls `predicate` until it holds (True) or `limit` seconds pass (False)."""
    deadline = time.time() + limit
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def start_server(binary_name, args):
    """Starts `binary_name` with `args` (given its port) on a free loopback port: (port, process)."""
    binary = shutil.which(binary_name)
    assert binary, f"{binary_name} is needed (scripts/test.sh installs it)"
    port = free_port()
    proc = subprocess.Popen(
        [binary, *args(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_port(port, binary_name)
    return port, proc


def start_redis():
    """A redis-server of the test's own: (url, process)."""
    port, proc = start_server(
        "redis-server",
        lambda p: ["--port", str(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    )
    return f"redis://127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def redis_url():
    url, proc = start_redis()
    yield url
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def memcached_url():
    # memcached refuses to run as root unless told which user to be.
    as_root = ["-u", "root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    port, proc = start_server(
        "memcached",
        lambda p: ["-l", "127.0.0.1", "-p", str(p), "-U", "0", "-m", "64", *as_root],
    )
    yield f"memcached://127.0.0.1:{port}"
    proc.kill()
    proc.wait()


class Uvicorn:
    """uvicorn serving `app` (`module:attribute`) from `cwd` on a loopback socket this process
    bound and hands over (`--fd`), so no other process can take the port in between."""

    def __init__(self, app, cwd, env=None, args=()):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--fd", str(sock.fileno()), "--log-level", "warning", *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            pass_fds=(sock.fileno(),),
        )
        sock.close()
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"GET /_calls HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n")
                    if s.recv(12).startswith(b"HTTP/1.1"):
                        break
            except OSError:
                pass
            assert self.proc.poll() is None, "uvicorn exited"
            assert time.time() < deadline, "uvicorn did not start"
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
