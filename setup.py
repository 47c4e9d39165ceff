"""Builds the Swift library (libsamix.so) and the ``samix-bench`` CLI, and packages them with the
Python bindings.

``pip install .`` and ``pip install -e .`` run::

    swift build -c release --product samix -Xswiftc -static-stdlib --scratch-path $SAMIX_SCRATCH_PATH
    swift build -c release --product samix-bench -Xswiftc -static-stdlib --scratch-path $SAMIX_SCRATCH_PATH

(the scratch path defaults to ``.build``; Package.swift compiles for x86-64 + AVX2/FMA, i.e.
``-target-cpu haswell``, never the host CPU) and copy ``libsamix.so`` into ``python/samix/lib/`` and
``samix-bench`` into ``python/samix/bin/`` (run by the ``samix-bench`` console script). The static
Swift standard library means no Swift toolchain is needed at run time; the library and the CLI still
link dynamically against oneDNN (``libdnnl.so.2``, which pulls in libgomp and libOpenCL), OpenBLAS
(``libopenblas.so.0``, with libgfortran and libquadmath), zlib, libstdc++, libgcc_s and glibc.
``pip install .`` uses the system's copies (Debian: libdnnl-dev, libopenblas-dev, zlib1g-dev).

The library is loaded with ctypes, not as a CPython extension, so the wheel is tagged
``py3-none-<platform>`` and one wheel serves every CPython >= 3.9. ``scripts/check_wheel.sh`` turns
it into a self-contained ``py3-none-manylinux_2_*_x86_64`` wheel with ``auditwheel repair`` (which
copies oneDNN, OpenBLAS and their dependencies into ``samix.libs/`` and points the RPATH of
libsamix.so and samix-bench there) and tests it in fresh venvs without Swift on PATH.

Environment variables:
  SAMIX_SCRATCH_PATH   SwiftPM scratch directory (default: .build in the source tree)
  SAMIX_SWIFT          swift executable (default: swift on PATH)
  SAMIX_SKIP_SWIFT_BUILD=1  reuse python/samix/lib/libsamix.so (and bin/samix-bench if present) as is
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
PKG_BIN = ROOT / "python" / "samix" / "bin"
LIB_NAME = "libsamix.so"
BENCH_NAME = "samix-bench"


def _version() -> str:
    ns: dict = {}
    exec((ROOT / "python" / "samix" / "_version.py").read_text(), ns)
    return ns["__version__"]


def _install(built: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(built, tmp)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)  # atomic: a running process keeps its mapped copy


def build_swift_library() -> Path:
    """Builds libsamix.so and samix-bench in release mode and copies them into python/samix/lib/ and
    python/samix/bin/; returns the library's path."""
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
    for product, name, target in (("samix", LIB_NAME, dest), ("samix-bench", BENCH_NAME, PKG_BIN / BENCH_NAME)):
        cmd = [swift, "build", "-c", "release", "--product", product,
               "-Xswiftc", "-static-stdlib", "--scratch-path", str(scratch)]
        print("samix: " + " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
        bin_path = subprocess.run(cmd + ["--show-bin-path"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout.strip().splitlines()[-1]
        built = Path(bin_path) / name
        if not built.is_file():
            sys.exit(f"samix: swift build succeeded but {built} is missing")
        _install(built, target)
    return dest


class BinaryDistribution(Distribution):
    """Marks the wheel as platform-specific (it contains libsamix.so for x86-64 Linux)."""

    def has_ext_modules(self) -> bool:
        return True


try:
    from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel as _bdist_wheel


class BdistWheelAnyPython(_bdist_wheel):
    """Tags the wheel ``py3-none-<platform>``: the native code is loaded with ctypes, not imported
    as a CPython extension, so it fits every CPython 3 (python_requires says which)."""

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


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
    package_data={"samix": ["lib/libsamix.so", "bin/samix-bench", "py.typed"]},
    entry_points={"console_scripts": ["samix-bench = samix._bench:main"]},
    install_requires=["numpy>=1.21"],
    extras_require={"test": ["pytest", "hypothesis"], "progress": ["tqdm", "ipywidgets"], "viz": ["matplotlib"]},
    cmdclass={"build_py": BuildPyWithSwift, "bdist_wheel": BdistWheelAnyPython},
    distclass=BinaryDistribution,
    zip_safe=False,
)
