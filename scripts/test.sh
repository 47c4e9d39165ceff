#!/usr/bin/env bash
# Runs every test: Swift unit tests (swift test) and the Python tests (pytest) against the
# installed package.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
# Optional extras, so their code paths are tested too (the package itself needs only NumPy; the
# tests check the messages shown when they are missing in a subprocess that hides them).
"$VENV/bin/python" -m pip install -q matplotlib safetensors
# Multi-rank tests (tests/python/test_distributed.py) run under Open MPI's mpirun; libmpi is loaded at
# run time, so only the runtime packages are needed.
if ! command -v mpirun >/dev/null || ! dpkg -s libopenmpi3 >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "samix: installing openmpi-bin libopenmpi3 (for the multi-rank tests)" >&2
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y openmpi-bin libopenmpi3
fi
# Headless notebook execution of examples/*.ipynb (tests/python/test_examples.py): a real kernel.
"$VENV/bin/python" -m pip install -q nbclient nbformat ipykernel
swift test --scratch-path "${SAMIX_SCRATCH_PATH:-$ROOT/.build}"
cd "$ROOT/tests/python"   # run from here so `import samix` finds the installed package, not ./python
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/tests/python" "$@"
