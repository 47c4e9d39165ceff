"""Builds the Swift library (libsamix.so) and packages it with the Python bindings.

``pip install .`` and ``pip install -e .`` run::

    swift build -c release --product samix -Xswiftc -static-stdlib --scratch-path $SAMIX_SCRATCH_PATH

(the scratch path defaults to ``.build``; Package.swift compiles for x86-64 + AVX2/FMA, i.e.
``-target-cpu haswell``, never the host CPU) and copy the resulting ``libsamix.so`` into
``python/samix/lib/``. The static Swift standard library makes the .so self-contained: it needs
only libopenblas, libstdc++ and libc at run time, no Swift toolchain.

Environment variables:
  SAMIX_SCRATCH_PATH   SwiftPM scratch directory (default: .build in the source tree)
  SAMIX_SWIFT          swift executable (default: swift on PATH)
  SAMIX_SKIP_SWIFT_BUILD=1  reuse python/samix/lib/libsamix.so as is (must already exist)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PKG_LIB = ROOT / "python" / "samix" / "lib"
LIB_NAME = "libsamix.so"


def _version() -> str:
    ns: dict = {}
    exec((ROOT / "python" / "samix" / "_version.py").read_text(), ns)
    return ns["__version__"]


def build_swift_library() -> Path:
    """Builds libsamix.so in release mode and copies it into python/samix/lib/; returns its path."""
    dest = PKG_LIB / LIB_NAME
    if os.environ.get("SAMIX_SKIP_SWIFT_BUILD") == "1":
        if not dest.is_file():
            sys.exit(f"SAMIX_SKIP_SWIFT_BUILD=1 but {dest} does not exist")
        return dest
    swift = os.environ.get("SAMIX_SWIFT") or shutil.which("swift")
    if not swift:
        sys.exit(
            "samix: the Swift toolchain (swift 6.x) is needed to build libsamix.so but `swift` is not "
            "on PATH. Install Swift from https://www.swift.org/install/ or set SAMIX_SWIFT."
        )
    scratch = Path(os.environ.get("SAMIX_SCRATCH_PATH", ROOT / ".build"))
    if not scratch.is_absolute():
        scratch = ROOT / scratch
    cmd = [swift, "build", "-c", "release", "--product", "samix",
           "-Xswiftc", "-static-stdlib", "--scratch-path", str(scratch)]
    print("samix: " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    bin_path = subprocess.run(cmd + ["--show-bin-path"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]
    built = Path(bin_path) / LIB_NAME
    if not built.is_file():
        sys.exit(f"samix: swift build succeeded but {built} is missing")
    PKG_LIB.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".so.tmp")
    shutil.copyfile(built, tmp)
    os.replace(tmp, dest)  # atomic: a running process keeps its mapped copy
    return dest


class BinaryDistribution(Distribution):
    """Marks the wheel as platform-specific (it contains libsamix.so for x86-64 Linux)."""

    def has_ext_modules(self) -> bool:
        return True


class BuildPyWithSwift(build_py):
    """build_py that first builds the Swift library into the package's lib/ directory."""

    def run(self) -> None:
        build_swift_library()
        super().run()


setup(
    name="samix",
    version=_version(),
    description="CPU deep-learning engine in Swift for mixup research (SAMix/AutoMix), with NumPy bindings",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    package_dir={"": "python"},
    packages=find_packages("python"),
    package_data={"samix": ["lib/libsamix.so", "py.typed"]},
    install_requires=["numpy>=1.21"],
    extras_require={"test": ["pytest", "hypothesis"], "progress": ["tqdm", "ipywidgets"], "viz": ["matplotlib"]},
    cmdclass={"build_py": BuildPyWithSwift},
    distclass=BinaryDistribution,
    zip_safe=False,
)
