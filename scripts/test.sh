#!/usr/bin/env bash
# Runs every test of the workspace, then a short run of every fuzz target (scripts/fuzz.sh,
# FUZZ_SECONDS each, default 10; 0 skips it). Installs what the tests need first (redis-server,
# redis-cli, memcached, openssl, a C++ compiler for libFuzzer, and a Python venv in target/venv
# with fastapi, uvicorn and jinja2 for the FastAPI example's test) when missing, so a fresh
# machine needs nothing but this script. The tests start their own servers on free loopback ports
# (larder-testkit, or the proxy binary on a port it picks), never one already running.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_updated=0
need() { # need BINARY DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "scripts/test.sh: $1 not found; installing the $2 package" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    if [ "$apt_updated" -eq 0 ]; then
      $sudo apt-get update -qq >/dev/null 2>&1 || true
      apt_updated=1
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 || true
  fi
  if ! command -v "$1" >/dev/null 2>&1; then
    # Tests that need it will fail and say so; tests that do not still run.
    echo "scripts/test.sh: could not install $2; tests that start $1 will fail" >&2
  fi
}

need redis-server redis-server
need redis-cli redis-tools
need memcached memcached
need openssl openssl  # certificates for the TLS (rediss://) test
need c++ g++          # libFuzzer, built by the fuzz targets

need python3 python3
# The FastAPI example (examples/fastapi) runs under uvicorn from this venv in the proxy's tests.
VENV=target/venv
if ! "$VENV/bin/python" -c "import fastapi, uvicorn, httptools, jinja2, pytest, pydantic, uvloop" >/dev/null 2>&1 \
    || [ ! -x "$VENV/bin/maturin" ]; then
  echo "scripts/test.sh: making the Python venv $VENV (fastapi, uvicorn, jinja2, pytest, maturin)" >&2
  python3 -m venv "$VENV" 2>/dev/null || {
    $([ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && echo sudo) \
      env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null 2>&1 || true
    python3 -m venv "$VENV"
  }
  "$VENV/bin/pip" install -q --disable-pip-version-check -r examples/fastapi/requirements.txt \
    -r crates/larder-py/requirements-test.txt
fi
export LARDER_PYTHON="$PWD/$VENV/bin/python"

cargo test --workspace "$@"

# larder for Python as users install it: the manylinux2014 x86_64 wheel (scripts/wheels.sh, an
# unoptimized build: these tests check behaviour; scripts/bench-*.sh measure release builds),
# installed into a fresh venv and tested there with no cargo or rustc on PATH, so nothing is
# built at install time and the package's own files are what is tested.
rm -f target/wheels/larder_cache-*-manylinux2014_x86_64*.whl
ABI3=310 WHEEL_TARGETS=x86_64-unknown-linux-gnu WHEEL_PROFILE=dev scripts/wheels.sh >/dev/null
WHEEL_VENV=target/wheel-venv
python3 -m venv --clear "$WHEEL_VENV"
"$WHEEL_VENV/bin/pip" install -q --disable-pip-version-check \
  -r examples/fastapi/requirements.txt -r crates/larder-py/requirements-test.txt \
  target/wheels/larder_cache-*-manylinux2014_x86_64*.whl
NO_RUST_PATH="$PWD/$WHEEL_VENV/bin:$(tr ':' '\n' <<<"$PATH" | grep -v -e cargo -e rustup | paste -sd:)"
PATH="$NO_RUST_PATH" "$WHEEL_VENV/bin/python" -c "
import larder, shutil
assert shutil.which('cargo') is None and shutil.which('rustc') is None, 'a Rust toolchain on PATH'
assert '/wheel-venv/' in larder.__file__, 'larder imported from ' + larder.__file__
"
PATH="$NO_RUST_PATH" "$WHEEL_VENV/bin/python" -m pytest -q -p no:cacheprovider crates/larder-py/tests
# The decorators keep the decorated functions' signatures for type checkers: mypy --strict on an
# example against the installed package (its marked lines must be errors).
PATH="$NO_RUST_PATH" "$WHEEL_VENV/bin/python" -m mypy --strict --warn-unused-ignores \
  --no-incremental crates/larder-py/tests/typing/example.py
if [ "${FUZZ_SECONDS:-10}" != 0 ]; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
fi
