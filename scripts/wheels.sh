#!/usr/bin/env bash
# Builds larder for Python's wheels and sdist into target/wheels/: abi3 wheels, two per platform
# (cp310-abi3 for every CPython from 3.10, cp39-abi3 for 3.9) for manylinux2014 (glibc 2.17: Debian 9+, Ubuntu 18.04+, RHEL/
# CentOS 7+, Amazon Linux 2) and musllinux_1_2 (Alpine 3.13+), each for x86_64 and aarch64.
#
#   scripts/wheels.sh                      every wheel and the sdist (release builds)
#   WHEEL_TARGETS="x86_64-unknown-linux-gnu" scripts/wheels.sh    just those targets
#   WHEEL_PROFILE=dev scripts/wheels.sh    unoptimized (CI: the tests run against it)
#   ABI3=310 scripts/wheels.sh             only the cp310-abi3 wheels
#
# Tools from the registries only: maturin and zig (the `ziglang` wheel) from PyPI into a venv of
# their own (target/wheel-tools); zig links against the old glibc, so the machine's own glibc
# does not leak into the wheel. The Rust targets are added with rustup when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/wheels
TOOLS=target/wheel-tools
PROFILE="${WHEEL_PROFILE:-release}"
TARGETS="${WHEEL_TARGETS:-x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl}"

if [ ! -x "$TOOLS/bin/maturin" ] || ! "$TOOLS/bin/python" -c "import ziglang" >/dev/null 2>&1; then
  echo "scripts/wheels.sh: installing maturin and ziglang into $TOOLS" >&2
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q --disable-pip-version-check "maturin>=1.5,<2" "ziglang>=0.13"
fi
export PATH="$PWD/$TOOLS/bin:$PATH"

mkdir -p "$OUT"
installed_targets="$(rustup target list --installed 2>/dev/null || true)"
for target in $TARGETS; do
  case "$target" in
    *-linux-gnu) compat=manylinux2014 ;;
    *-linux-musl) compat=musllinux_1_2 ;;
    *) echo "scripts/wheels.sh: unknown target $target" >&2; exit 2 ;;
  esac
  if ! grep -qx "$target" <<<"$installed_targets"; then
    rustup target add "$target"
  fi
  # cp310-abi3 (METH_FASTCALL: cheaper calls), and cp39-abi3 for Python 3.9 unless ABI3=310.
  for abi in ${ABI3:-310 39}; do
    features=()
    [ "$abi" = 39 ] && features=(--no-default-features --features abi3-py39)
    echo "scripts/wheels.sh: $target ($compat, cp$abi-abi3, $PROFILE)" >&2
    start=$(date +%s)
    maturin build -q -m crates/larder-py/Cargo.toml --profile "$PROFILE" --zig \
      --target "$target" --compatibility "$compat" --out "$OUT" "${features[@]}"
    echo "scripts/wheels.sh: $target cp$abi-abi3 built in $(( $(date +%s) - start )) s" >&2
  done
done
if [ -z "${WHEEL_TARGETS:-}" ]; then
  maturin sdist -m crates/larder-py/Cargo.toml --out "$OUT"
fi
ls -l "$OUT"
