"""Model and trainer checkpoints: safetensors files, exact resume, atomic saves, corrupt files."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import samix
from samix.errors import InvalidArgumentError, InvalidHandleError, SamixIOError, SamixTypeError


def read_safetensors_numpy(path):
    """An independent plain-NumPy reader of the safetensors format (F32 only)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32"
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"])
    return out, meta


def tiny_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 60, (n, 1, 8, 8), dtype=np.uint8)
    for i, c in enumerate(y):
        x[i, 0, 2 * c:2 * c + 2, :] += 150
    return x, y


def assert_same_state(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k].view(np.uint32), b[k].view(np.uint32)), k


# -- models ----------------------------------------------------------------------------------------

def test_model_round_trip_and_numpy_reader(tmp_path):
    path = tmp_path / "m.safetensors"
    x = np.random.default_rng(1).standard_normal((3, 1, 8, 8)).astype(np.float32)
    with samix.models.resnet20(num_classes=4, in_channels=1, seed=3) as m:
        m(x)  # training-mode forward: non-trivial BN running statistics
        m.save(path, metadata={"note": "hello"})
        sd = m.state_dict()
        logits = m.predict(x)
    tensors, meta = read_safetensors_numpy(path)
    assert meta["architecture"] == "resnet20" and meta["num_classes"] == "4" and meta["in_channels"] == "1"
    assert meta["note"] == "hello" and meta["format"] == "samix.model"
    assert set(tensors) == set(sd)
    for k in sd:
        assert np.array_equal(tensors[k], sd[k]), k
    # Per-tensor CRC-32 checksums (verified by an independent zlib here), hidden from read_metadata.
    import zlib
    for k, t in tensors.items():
        assert meta[f"crc32:{k}"] == f"{zlib.crc32(t.astype('<f4').tobytes()):08x}", k
    assert samix.checkpoint.read_metadata(path) == {k: v for k, v in meta.items() if not k.startswith("crc32:")}
    with samix.models.load(path) as m2:
        assert (m2.architecture, m2.num_classes, m2.in_channels) == ("resnet20", 4, 1)
        assert_same_state(m2.state_dict(), sd)
        assert np.array_equal(m2.predict(x), logits)
    with samix.models.resnet20(num_classes=4, in_channels=1, seed=9) as m3:
        assert m3.load(str(path)) is m3
        assert_same_state(m3.state_dict(), sd)


def test_safetensors_library_interoperates(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "m.safetensors"
    with samix.models.resnet20(num_classes=3, in_channels=1, seed=2) as m:
        m.save(path)
        sd = m.state_dict()
        loaded = st.load_file(str(path))
        assert set(loaded) == set(sd)
        for k in sd:
            assert loaded[k].dtype == np.float32 and np.array_equal(loaded[k], sd[k]), k
        # A file written by the safetensors library loads into a samix model.
        other = {k: (v + 1).astype(np.float32) for k, v in sd.items()}
        st.save_file(other, str(tmp_path / "lib.safetensors"), metadata={"who": "safetensors"})
        m.load(tmp_path / "lib.safetensors")
        assert_same_state(m.state_dict(), {k: other[k] for k in sd})


def test_failed_loads_raise_clearly_and_change_nothing(tmp_path):
    good = tmp_path / "good.safetensors"
    with samix.models.resnet20(num_classes=3, in_channels=1, seed=0) as m:
        m.save(good)
        raw = good.read_bytes()
        before = m.state_dict()
        cases = {
            "missing.safetensors": None,
            "truncated.safetensors": raw[: len(raw) // 2],
            "short.safetensors": raw[:5],
            "garbage.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!",
            "huge-header.safetensors": struct.pack("<Q", 1 << 40) + raw[8:],
            "empty.safetensors": b"",
        }
        for name, data in cases.items():
            p = tmp_path / name
            if data is not None:
                p.write_bytes(data)
            with pytest.raises(SamixIOError) as ei:
                m.load(p)
            assert name in str(ei.value)
            assert isinstance(ei.value, OSError)
            with pytest.raises(SamixIOError):
                samix.models.load(p)
        assert "truncated" in str(pytest.raises(SamixIOError, m.load, tmp_path / "short.safetensors").value)
        # Wrong architecture / class count: a ValueError naming the mismatch.
        with samix.models.resnet20(num_classes=5, in_channels=1) as other:
            other.save(tmp_path / "k5.safetensors")
        with pytest.raises(InvalidArgumentError, match="num_classes"):
            m.load(tmp_path / "k5.safetensors")
        # Non-strict load of a file lacking entries still checks shapes; nothing half-loaded.
        tensors, _ = read_safetensors_numpy(good)
        bad = {k: v.copy() for k, v in tensors.items()}
        last = list(bad)[-1]
        bad[last] = np.zeros(7, np.float32)
        _write_safetensors(tmp_path / "badshape.safetensors", bad)
        with pytest.raises(ValueError):
            m.load(tmp_path / "badshape.safetensors")
        assert_same_state(m.state_dict(), before)
        # Bad arguments.
        with pytest.raises(SamixTypeError):
            m.save(123)
        with pytest.raises(SamixTypeError):
            m.save(tmp_path / "x.safetensors", metadata={"k": 1})
        with pytest.raises(InvalidArgumentError):
            m.save("bad\0path")
        with pytest.raises(SamixIOError):
            m.save(tmp_path / "no-such-dir" / "x.safetensors")
        with pytest.raises(SamixIOError):
            m.save(tmp_path)  # a directory
    with pytest.raises(InvalidHandleError):
        m.save(good)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _write_safetensors(path, tensors, metadata=None):
    header, offset, blobs = {}, 0, []
    for k, v in tensors.items():
        b = np.ascontiguousarray(v, dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# -- atomic saves ------------------------------------------------------------------------------------

_CRASH_SCRIPT = textwrap.dedent("""
    import resource, signal, sys
    import samix
    mode, path = sys.argv[1], sys.argv[2]
    m = samix.models.resnet20(num_classes=3, in_channels=1, seed=7)
    # Ignored (CPython's default): writes past the limit fail with EFBIG. Default action: the
    # kernel kills the process in the middle of the write, like a crash.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN if mode == "error" else signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
    try:
        m.save(path)
    except OSError as e:
        print("OSError:", e)
        sys.exit(3)
    print("saved")
""")


@pytest.mark.parametrize("mode", ["error", "killed"])
def test_failure_mid_write_keeps_previous_file(tmp_path, mode):
    """The file size limit makes the save fail (EFBIG) or kills the process (SIGXFSZ) after 64 KiB
    of the ~1 MB file: the previous checkpoint must survive byte for byte."""
    path = tmp_path / "ckpt.safetensors"
    with samix.models.resnet20(num_classes=3, in_channels=1, seed=1) as m:
        m.save(path)
        sd = m.state_dict()
    before = path.read_bytes()
    assert len(before) > 65536 * 4
    r = subprocess.run([sys.executable, "-B", "-c", _CRASH_SCRIPT, mode, str(path)], capture_output=True, text=True,
                       timeout=120)
    if mode == "error":
        assert r.returncode == 3, (r.stdout, r.stderr)
        assert "write failed" in r.stdout and str(path) in r.stdout
        # The temporary file was removed.
        assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]
    else:
        assert r.returncode == -signal.SIGXFSZ, (r.returncode, r.stdout, r.stderr)
    assert path.read_bytes() == before
    with samix.models.load(path) as m2:
        assert_same_state(m2.state_dict(), sd)


# -- trainers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mix,opt", [("mixup", samix.optim.SGD(lr=0.05, nesterov=True)),
                                     ("cutmix", samix.optim.AdamW(lr=2e-3))])
def test_exact_resume(tmp_path, mix, opt):
    x, y = tiny_data(24)
    kw = dict(epochs=2, batch_size=8, progress=False, verbose=False)
    with samix.models.resnet20(num_classes=3, in_channels=1, seed=0) as m, \
            samix.Trainer(m, optimizer=opt, schedule=samix.optim.Schedule("cosine", warmup_steps=2), mix=mix,
                          alpha=0.7, label_smoothing=0.1, seed=5) as tr:
        tr.fit(x, y, **kw)
        straight = m.state_dict()
        straight_eval = tr.evaluate(x, y)

    path = tmp_path / "trainer.safetensors"
    with samix.models.resnet20(num_classes=3, in_channels=1, seed=0) as m, \
            samix.Trainer(m, optimizer=opt, schedule=samix.optim.Schedule("cosine", warmup_steps=2), mix=mix,
                          alpha=0.7, label_smoothing=0.1, seed=5) as tr:
        tr.fit(x, y, callbacks=[lambda r: False], **kw)  # stops after epoch 1 of 2
        assert tr.epochs_done == 1
        tr.save_checkpoint(path, metadata={"run": "test"})
        first_history = list(tr.history)

    tensors, meta = read_safetensors_numpy(path)
    assert meta["format"] == "samix.trainer" and meta["objective"] == mix and meta["seed"] == "5"
    assert meta["epochs_done"] == "1" and meta["steps_done"] == "3" and meta["run"] == "test"
    assert meta["config.mix"] == mix and meta["config.alpha"] == "0.7"
    assert any(k.startswith("optimizer.") for k in tensors)
    assert "extra.normalization.mean" in tensors

    # Class form: a new model + trainer from the file alone.
    with samix.Trainer.load_checkpoint(path) as tr2:
        assert isinstance(tr2, samix.Trainer)
        assert (tr2.epochs_done, tr2.steps_done, tr2.mix, tr2.alpha, tr2.seed) == (1, 3, mix, 0.7, 5)
        assert tr2.history == first_history
        assert type(tr2.optimizer) is type(opt) and tr2.optimizer.lr == opt.lr
        tr2.fit(x, y, **kw)
        assert tr2.epochs_done == 2 and len(tr2.history) == 2
        assert_same_state(tr2.model.state_dict(), straight)
        assert tr2.evaluate(x, y) == straight_eval
        tr2.model.close()
    # Instance form, into a trainer whose model starts from other weights.
    with samix.models.resnet20(num_classes=3, in_channels=1, seed=42) as m, \
            samix.Trainer(m, optimizer=opt, schedule=samix.optim.Schedule("cosine", warmup_steps=2), mix=mix,
                          alpha=0.7, label_smoothing=0.1, seed=5) as tr3:
        assert tr3.load_checkpoint(path) is tr3
        tr3.fit(x, y, **kw)
        assert_same_state(m.state_dict(), straight)


def test_trainer_checkpoint_mismatch_and_corruption(tmp_path):
    x, y = tiny_data(16)
    path = tmp_path / "t.safetensors"
    with samix.models.resnet20(num_classes=3, in_channels=1, seed=0) as m, samix.Trainer(m, mix="mixup", seed=1) as tr:
        tr.fit(x, y, epochs=1, batch_size=8, progress=False, verbose=False)
        tr.save_checkpoint(path)
        m.save(tmp_path / "model.safetensors")
    # A model can be read from a trainer checkpoint.
    with samix.models.load(path) as mm:
        assert mm.architecture == "resnet20"
    with samix.models.resnet20(num_classes=3, in_channels=1, seed=3) as m:
        before = m.state_dict()
        for kw, word in [(dict(mix="cutmix", seed=1), "objective"), (dict(mix="mixup", seed=2), "seed"),
                         (dict(mix="mixup", seed=1, optimizer=samix.optim.AdamW()), "optimizer")]:
            with samix.Trainer(m, **kw) as tr:
                with pytest.raises(InvalidArgumentError, match=word):
                    tr.load_checkpoint(path)
                assert tr.epochs_done == 0
        assert_same_state(m.state_dict(), before)
        with samix.Trainer(m, mix="mixup", seed=1) as tr:
            with pytest.raises(InvalidArgumentError, match="not a samix trainer checkpoint"):
                tr.load_checkpoint(tmp_path / "model.safetensors")
            raw = path.read_bytes()
            (tmp_path / "cut.safetensors").write_bytes(raw[:-100])
            with pytest.raises(SamixIOError, match="cut.safetensors"):
                tr.load_checkpoint(tmp_path / "cut.safetensors")
            assert tr.epochs_done == 0
        assert_same_state(m.state_dict(), before)
    with pytest.raises(InvalidArgumentError, match="not a samix trainer checkpoint"):
        samix.Trainer.load_checkpoint(tmp_path / "model.safetensors")
    with pytest.raises(SamixIOError):
        samix.Trainer.load_checkpoint(tmp_path / "missing.safetensors")
