"""The C ABI as a whole: header ↔ Python declarations, a plain-C client, loading and packaging."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import samix
from samix import _lib
from samix.errors import Status

HEADER = Path(__file__).resolve().parents[2] / "Sources" / "SAMixCAPI" / "include" / "samix.h"


def header_text() -> str:
    # Without comments, so examples in comments are not mistaken for declarations.
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def header_functions() -> dict[str, int]:
    """Function name -> number of parameters, for every prototype in samix.h."""
    out = {}
    for m in re.finditer(r"\b(samix_\w+)\s*\(([^)]*)\)\s*;", header_text()):
        params = m.group(2).strip()
        out[m.group(1)] = 0 if params in ("", "void") else params.count(",") + 1
    return out


def test_abi_version_matches_header_and_package():
    m = re.search(r"#define\s+SAMIX_ABI_VERSION\s+(\d+)", HEADER.read_text())
    assert m is not None
    assert int(m.group(1)) == _lib.ABI_VERSION == _lib.lib.samix_abi_version()
    assert samix.library_version() == samix.__version__


def test_status_codes_match_header():
    text = header_text()
    for st in Status:
        name = "SAMIX_OK" if st is Status.OK else f"SAMIX_E_{st.name}"
        m = re.search(rf"\b{name}\s*=\s*(\d+)", text)
        assert m is not None, f"{name} missing from samix.h"
        assert int(m.group(1)) == st.value
    assert len(re.findall(r"\bSAMIX_(?:OK|E_\w+)\s*=", text)) == len(Status)


def test_every_header_function_is_declared_in_python_and_exported():
    funcs = header_functions()
    assert funcs, "no prototypes parsed from samix.h"
    assert set(funcs) == set(_lib.SIGNATURES), (
        f"only in header: {set(funcs) - set(_lib.SIGNATURES)}; "
        f"only in _lib.py: {set(_lib.SIGNATURES) - set(funcs)}")
    for name, nparams in funcs.items():
        assert len(_lib.SIGNATURES[name][1]) == nparams, name
        assert hasattr(_lib.lib, name), f"{name} is not exported by {_lib.library_path}"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_plain_c_client(tmp_path, repo_root):
    exe = tmp_path / "smoke"
    libdir = Path(_lib.library_path).parent
    # Link against a copy named libsamix.so in its own directory (the loaded library may be named
    # differently when SAMIX_LIBRARY points elsewhere).
    link_dir = tmp_path / "lib"
    link_dir.mkdir()
    shutil.copy(_lib.library_path, link_dir / "libsamix.so")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-pthread",
                    "-I", str(HEADER.parent), str(repo_root / "tests" / "c" / "smoke.c"),
                    "-L", str(link_dir), "-lsamix", f"-Wl,-rpath,{link_dir}", "-o", str(exe)],
                   check=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    del libdir


def _import_in_subprocess(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    code = "import samix"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_missing_library_gives_actionable_import_error(tmp_path):
    r = _import_in_subprocess({"SAMIX_LIBRARY": str(tmp_path / "nope.so")})
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "not found" in r.stderr and "pip install" in r.stderr


def test_non_samix_library_gives_import_error():
    libm = "/lib/x86_64-linux-gnu/libm.so.6"
    if not os.path.exists(libm):
        pytest.skip("no libm at the Debian path")
    r = _import_in_subprocess({"SAMIX_LIBRARY": libm})
    assert r.returncode != 0
    assert "not a samix library" in r.stderr


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_abi_mismatch_gives_import_error(tmp_path):
    src = tmp_path / "fake.c"
    src.write_text("int samix_abi_version(void) { return 999; }\n")
    so = tmp_path / "libsamix.so"
    subprocess.run(["gcc", "-shared", "-fPIC", str(src), "-o", str(so)], check=True)
    r = _import_in_subprocess({"SAMIX_LIBRARY": str(so)})
    assert r.returncode != 0
    assert "ABI version 999" in r.stderr and f"needs version {_lib.ABI_VERSION}" in r.stderr


def test_info_command():
    r = subprocess.run([sys.executable, "-m", "samix", "info"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert samix.__version__ in r.stdout
    assert str(_lib.library_path) in r.stdout
    assert "OpenBLAS" in r.stdout
    assert re.search(r"threads\s+\d+", r.stdout)
    r = subprocess.run([sys.executable, "-m", "samix", "bogus"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_bundled_library_is_self_contained():
    """The library shipped in the package needs no Swift toolchain libraries at run time."""
    if os.environ.get("SAMIX_LIBRARY"):
        pytest.skip("testing an external SAMIX_LIBRARY build, not the bundled one")
    if shutil.which("ldd") is None:
        pytest.skip("needs ldd")
    out = subprocess.run(["ldd", str(_lib.library_path)], capture_output=True, text=True, check=True).stdout
    assert "not found" not in out
    assert "swift" not in out.lower() and "Foundation" not in out and "dispatch" not in out.lower(), out
    assert Path(_lib.library_path).parent.name == "lib"
    assert Path(_lib.library_path).parent.parent == Path(samix.__file__).parent


def test_package_ships_py_typed():
    assert (Path(samix.__file__).parent / "py.typed").exists()


def test_a_call_from_inside_a_callback_on_the_same_object_is_an_error_not_a_crash():
    """A record callback runs while its call holds the object's lock; calling the same object from
    it must fail with SAMIX_E_INVALID_STATE (re-locking the lock on the same thread would trap and
    kill the interpreter). Calls on other objects still work from the callback."""
    import ctypes
    import numpy as np
    model = samix.models.Model("resnet20", num_classes=2, in_channels=1, seed=0)
    other = samix.models.Model("resnet20", num_classes=2, in_channels=1, seed=1)
    tr, tr_other = samix.Trainer(model, seed=0), samix.Trainer(other, seed=0)
    x = np.random.default_rng(0).standard_normal((8, 1, 8, 8)).astype(np.float32)
    y = (np.arange(8) % 2).astype(np.int64)
    shape = np.array(x.shape, dtype=np.int64)
    inner: list = []

    def on_record(_user, _text):
        loss, acc = ctypes.c_double(0), ctypes.c_double(0)
        for t in (tr, tr_other):
            st = _lib.lib.samix_trainer_evaluate_array(t.handle, x.ctypes.data, shape.ctypes.data, y.ctypes.data, 4,
                                                       ctypes.addressof(loss), ctypes.addressof(acc))
            inner.append((st, _lib.last_error() if st else ""))
        return 1   # stop after the first record

    cb = _lib.RECORD_CALLBACK(on_record)
    st = _lib.lib.samix_trainer_fit(tr.handle, 0, x.ctypes.data, shape.ctypes.data, y.ctypes.data, 0, None, None,
                                    None, 1, 4, 0, 4, 1, cb, None)
    assert st == Status.OK, _lib.last_error()
    assert inner[0][0] == Status.INVALID_STATE and "in use by a running call on this thread" in inner[0][1]
    assert inner[1] == (Status.OK, "")
    # the object is usable again once the call has returned
    assert tr.evaluate(x, y)["count"] == 8
