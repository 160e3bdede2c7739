#!/bin/bash
# The device side on 64-bit ARM, under qemu user-mode emulation (../shared/tools/arm64):
# base install only (no torch), the device-side tests, then `edgerec bench --device-profile rpi4`.
# Functional only: timings under emulation mean nothing; the point is that everything runs.
#
#   benchmarks/arm64_check.sh            (from the repository root; needs root for the chroot)
#
# The export side cannot run on the device, so the bundle the tests and the bench use is built
# here on the host first (HOST_PYTHON with the export extra) into build/arm64-check/ (git-ignored),
# which the arm64 root sees as /src/build/arm64-check/. Set ARM64_BUNDLE to a bundle folder
# under the repository to skip that build. Each step is capped (STEP_TIMEOUT, seconds).
# Output: build/arm64-check/{log.txt,bench-rpi4.json,bench-rpi4.md}; exit status 0 only when
# every step passed.
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

BUNDLE=${ARM64_BUNDLE:-$OUT/tiny/bundle}
if [ -z "${ARM64_BUNDLE:-}" ] && [ ! -f "$BUNDLE/manifest.json" ]; then
  step "build tiny bundle on the host" "$HOST_PYTHON" - "$OUT/tiny" <<'PY' || exit 1
import sys
from pathlib import Path
sys.path.insert(0, ".")
from tests.conftest import make_tiny_catalogue, tiny_build_config
from export.data.contract import load_dataset
from export.pipeline import build
root = Path(sys.argv[1])
inter, items, media = make_tiny_catalogue(root / "data")
print(build(load_dataset(inter, items, media), root / "bundle", root / "work", tiny_build_config()).bundle)
PY
fi
rm -rf "$OUT/wheel"
# A pure-Python wheel built on the host: the root installs it and its aarch64 dependencies.
step "wheel of edgerec" "$HOST_PYTHON" -m pip wheel --no-deps --no-build-isolation -q -w "$OUT/wheel" . || exit 1
step "arm64 root" "$ARM64" setup || exit 1
WHEEL=$(ls "$OUT"/wheel/edgerec-*.whl | head -1)
step "base install (aarch64 wheels)" "$ARM64" pip install -q "/src/$WHEEL" pytest || exit 1
step "no server libraries" "$ARM64" run python -c \
  "import edge, edge.recommender, edge.bench, sys, platform; print(platform.machine()); assert 'torch' not in sys.modules"
# Device-side tests: none of these builds a bundle (the bench tests read the prebuilt one).
step "device tests" "$ARM64" run env EDGEREC_TEST_BUNDLE="/src/$BUNDLE" python -m pytest -q -p no:cacheprovider \
  tests/test_profiles.py tests/test_bench.py tests/test_context.py tests/test_import_light.py \
  tests/test_features_frames.py tests/test_features_audio.py tests/test_history.py
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
