#!/bin/bash
# The device side on 64-bit ARM, under qemu user-mode emulation (../shared/tools/arm64):
# base install only (no torch), the device-side tests, then `edgerec bench --device-profile rpi4`.
# Functional only: timings under emulation mean nothing; the point is that everything runs.
#
#   benchmarks/arm64_check.sh            (from the repository root; needs root for the chroot)
#
# The export side cannot run on the device, so the tests and the bench use the committed fixture
# bundle tests/fixtures/device_bundle/ (what the current exporter writes: tests/test_device_fixture.py
# checks it on the host). Set ARM64_BUNDLE to another bundle folder under the repository to bench
# that one instead. Each step is capped (STEP_TIMEOUT, seconds).
# Output: build/arm64-check/{log.txt,pytest.txt,bench-rpi4.json,bench-rpi4.md}; exit status 0 only
# when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
ARM64=${ARM64:-../shared/tools/arm64}
HOST_PYTHON=${HOST_PYTHON:-python3}
STEP_TIMEOUT=${STEP_TIMEOUT:-2400}
OUT=build/arm64-check
mkdir -p "$OUT"
LOG="$OUT/log.txt"
: > "$LOG"
status=0
step() {  # step NAME CMD...: run with a cap, log it, remember failures
  local name=$1; shift
  echo "== $name: $*" | tee -a "$LOG"
  local t0=$SECONDS
  timeout "$STEP_TIMEOUT" "$@" >> "$LOG" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$LOG"
  [ $rc -eq 0 ] || status=1
  return $rc
}

BUNDLE=${ARM64_BUNDLE:-tests/fixtures/device_bundle}
rm -rf "$OUT/wheel"
# A pure-Python wheel built on the host: the root installs it and its aarch64 dependencies.
step "wheel of edgerec" "$HOST_PYTHON" -m pip wheel --no-deps --no-build-isolation -q -w "$OUT/wheel" . || exit 1
step "arm64 root" "$ARM64" setup || exit 1
WHEEL=$(ls "$OUT"/wheel/edgerec-*.whl | head -1)
step "base install (aarch64 wheels)" "$ARM64" pip install -q "/src/$WHEEL" pytest || exit 1
step "no server libraries" "$ARM64" run python -c \
  "import edge, edge.recommender, edge.bench, sys, platform; print(platform.machine()); assert 'torch' not in sys.modules"
# The whole test suite on a base install: the device-side tests run on the fixture bundle; tests of
# the server side skip (no torch there), as do those needing optional extras (av, soxr, matplotlib,
# librosa, faiss, implicit). -rs lists every skip with its reason.
step "device tests" "$ARM64" run sh -c "python -m pytest -q -rs -p no:cacheprovider tests > /src/$OUT/pytest.txt 2>&1; rc=\$?; tail -40 /src/$OUT/pytest.txt; exit \$rc"
step "edgerec bench --device-profile rpi4" "$ARM64" run sh -c \
  "edgerec bench --device-profile rpi4 --bundle /src/$BUNDLE --runs 5 --cold-runs 1 --json /src/$OUT/bench-rpi4.json > /src/$OUT/bench-rpi4.md"
cat "$OUT/bench-rpi4.md" 2>/dev/null | tee -a "$LOG"
# The offline device package: built here (pip download needs the index), installed there with
# `pip --no-index` into a fresh venv, then used to record and recommend.
step "package for aarch64" "$HOST_PYTHON" -m edge.cli package --platform manylinux2014_aarch64 \
  --bundle "$BUNDLE" --device-profile rpi4 --out "$OUT/pkg-aarch64.tar"
step "offline install + recommend on aarch64" "$ARM64" run sh -c "set -eu
  rm -rf /tmp/pk /tmp/edgerec-inst && mkdir -p /tmp/pk && tar -xf /src/$OUT/pkg-aarch64.tar -C /tmp/pk
  PYTHON=python3 sh /tmp/pk/edgerec-package/install.sh /tmp/edgerec-inst
  E=/tmp/edgerec-inst/venv/bin/edgerec; B=/tmp/edgerec-inst/bundle; H=/tmp/edgerec-inst/h.db
  \$E record --bundle \$B --db \$H --profile alice --item-id i002 --kind complete --timestamp 1750000000
  \$E recommend --bundle \$B --db \$H --profile alice -k 5 --timestamp 1750000600"
echo "arm64 check: $([ $status -eq 0 ] && echo PASSED || echo FAILED) ($(date -u +%Y-%m-%d)); log: $LOG"
exit $status
