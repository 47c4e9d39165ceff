#!/usr/bin/env bash
# Runs every test: Swift unit tests (swift test) and the Python tests (pytest) against the
# installed package.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
# Optional extras, so their code paths are tested too (the package itself needs only NumPy; the
# tests check the messages shown when they are missing in a subprocess that hides them).
"$VENV/bin/python" -m pip install -q matplotlib safetensors
# Headless notebook execution of examples/*.ipynb (tests/python/test_examples.py): a real kernel.
"$VENV/bin/python" -m pip install -q nbclient nbformat ipykernel
swift test --scratch-path "${SAMIX_SCRATCH_PATH:-$ROOT/.build}"
cd "$ROOT/tests/python"   # run from here so `import samix` finds the installed package, not ./python
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/tests/python" "$@"
