"""Fixtures: a real redis-server on a free loopback port, started and stopped per test module."""

import os
import shutil
import socket
import subprocess
import time

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis():
    """A redis-server of the test's own: (url, process)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (scripts/test.sh installs it)"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.time() < deadline, "redis-server did not start"
            time.sleep(0.02)
    return f"redis://127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def redis_url():
    url, proc = start_redis()
    yield url
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def memcached_url():
    binary = shutil.which("memcached")
    assert binary, "memcached is needed (scripts/test.sh installs it)"
    port = free_port()
    args = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64"]
    # memcached refuses to run as root unless told which user to be.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args += ["-u", "root"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.time() < deadline, "memcached did not start"
            time.sleep(0.02)
    yield f"memcached://127.0.0.1:{port}"
    proc.kill()
    proc.wait()
