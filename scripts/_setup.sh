# Shared set-up for scripts/demo.sh and scripts/test.sh (sourced). Idempotent: installs only what is
# missing. Variables: SAMIX_VENV (default .venv), SAMIX_SCRATCH_PATH (SwiftPM scratch, default .build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${SAMIX_VENV:-$ROOT/.venv}"

need_apt=()
for pkg in libopenblas-dev libdnnl-dev zlib1g-dev dataset-fashion-mnist python3-venv gcc; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "samix: installing ${need_apt[*]}" >&2
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need_apt[@]}"
fi
command -v swift >/dev/null || { echo "samix: Swift 6.x is required (https://www.swift.org/install/)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q numpy pytest hypothesis
# Builds libsamix.so (swift build -c release -Xswiftc -static-stdlib) and installs the package.
"$VENV/bin/python" -m pip install -q "$ROOT"
