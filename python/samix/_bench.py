"""The ``samix-bench`` console script: runs the CLI binary bundled in ``samix/bin/``.

``pip install .`` builds it next to the library; a wheel repaired by auditwheel finds its oneDNN and
OpenBLAS copies through its RPATH. The process is replaced by the binary (``os.execv``), so exit
codes, signals and output are the CLI's own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bin" / "samix-bench"


def main() -> int:
    if not BENCH.is_file():
        print(f"samix-bench: {BENCH} is missing; reinstall samix from its source tree (pip install .)",
              file=sys.stderr)
        return 1
    os.execv(str(BENCH), [str(BENCH), *sys.argv[1:]])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
