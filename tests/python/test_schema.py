"""Issue 12: one option schema owned by the engine. Every Python default (signatures, class fields,
MIX_METHODS, MoCo) must equal the engine's schema, read here straight from the ABI (not from the
package's cached copy), and the ABI's own parser must build the same objects from empty options as
from the schema's defaults given explicitly."""

from __future__ import annotations

import ctypes
import inspect
import json

import pytest

import samix
from samix._lib import check, lib
from samix.errors import InvalidArgumentError, SamixError


def raw_schema(group: str) -> dict:
    needed = ctypes.c_int64(0)
    check(lib.samix_option_schema(group.encode(), None, 0, ctypes.addressof(needed)))
    buf = ctypes.create_string_buffer(int(needed.value))
    check(lib.samix_option_schema(group.encode(), ctypes.addressof(buf), len(buf), ctypes.addressof(needed)))
    return json.loads(buf.value.decode())


def engine_defaults(group: str, method: str) -> dict[str, str]:
    """name -> default text of every option of `method`, from the ABI's JSON."""
    return {o["name"]: o["default"] for o in raw_schema(f"{group}:{method}")["options"] if o["default"] is not None}


def same(py_value, text: str) -> bool:
    if isinstance(py_value, bool):
        return text.lower() in (("1", "true") if py_value else ("0", "false"))
    if isinstance(py_value, (int, float)):
        return float(text) == pytest.approx(float(py_value), rel=1e-9)
    if isinstance(py_value, tuple):
        return [float(v) for v in text.split(",")] == pytest.approx([float(v) for v in py_value])
    if py_value is None:
        return text.lower() == "none"
    return py_value == text


@pytest.mark.parametrize("cls,group,method", [(samix.AutoMix, "learned", "automix"), (samix.SAMix, "learned", "samix")])
def test_learned_class_and_signature_defaults_are_the_schema(cls, group, method):
    engine = engine_defaults(group, method)
    values = cls()._values
    assert set(values) <= set(engine), set(values) - set(engine)          # every Python option is in the schema
    assert len(values) >= 18
    for k, v in values.items():
        assert same(v, engine[k]), (method, k, v, engine[k])
    sig = inspect.signature(cls).parameters
    checked = 0
    for name, p in sig.items():
        if p.default is not inspect.Parameter.empty:
            assert same(p.default, engine[name]), (method, name, p.default, engine[name])
            checked += 1
    assert checked >= 6
    # The engine's older defaults call is the schema too.
    assert {k: v for k, v in samix.learned.engine_defaults(method).items()} == engine


def test_pretrained_defaults_are_the_schema(tmp_path):
    engine = engine_defaults("pretrained", "samix-p")
    for fn in (samix.learned.PretrainedMixer, samix.SAMix.pretrained):
        for name, p in inspect.signature(fn).parameters.items():
            if p.default is not inspect.Parameter.empty:
                assert same(p.default, engine[name]), (fn, name)
    for name, default, _ in samix.learned.PretrainedMixer._FIELDS:
        if name != "path":
            assert same(default, engine[name]), name


def test_moco_defaults_are_the_schema():
    engine = engine_defaults("ssl", "samix")
    sig = inspect.signature(samix.ssl.MoCo).parameters
    compared = 0
    for name, p in sig.items():
        if name in engine and p.default is not None:
            assert same(p.default, engine[name]), (name, p.default, engine[name])
            compared += 1
        elif name in engine:
            # None = "the engine's default" (not sent); the schema still declares it.
            assert engine[name] is not None
    assert compared >= 13
    # The SAMix options MoCo takes from its policy default to the schema's SSL values too.
    pol = samix.SAMix()
    for k in samix.ssl._SAMIX_SSL_FIELDS:
        assert same(getattr(pol, k), engine[k]), k


def test_moco_fit_and_knn_defaults_are_the_schema():
    engine = {o["name"]: o["default"] for o in raw_schema("ssl_fit")["options"]}
    compared = 0
    for fn, rename in ((samix.ssl.MoCo.fit, {}), (samix.ssl.knn_eval, {"k": "knn_k", "temperature": "knn_temperature"})):
        for name, p in inspect.signature(fn).parameters.items():
            key = rename.get(name, name)
            if key in engine:
                assert same(p.default, engine[key]), (fn.__name__, name, p.default, engine[key])
                compared += 1
    assert compared == 8


def test_moco_created_through_the_abi_uses_the_schema():
    """MoCo() sends its (schema) defaults; the engine accepts the same text with every option given
    explicitly, and with none (its own defaults, the same schema)."""
    with samix.ssl.MoCo("resnet20", in_channels=1, seed=0) as m:
        engine = engine_defaults("ssl", "none")
        assert set(m.options) == set(engine)
        for k, v in m.options.items():
            assert same(v, engine[k]), k
    for text in ("", "".join(f"{k}={v}\n" for k, v in engine_defaults("ssl", "samix").items())):
        h = ctypes.c_uint64(0)
        check(lib.samix_ssl_create(b"resnet20", 1, b"samix", text.encode(), 0, ctypes.addressof(h)))
        check(lib.samix_ssl_free(h.value))


def test_learned_abi_accepts_the_schema_defaults_explicitly():
    for method in ("automix", "samix"):
        text = "".join(f"{k}={v}\n" for k, v in engine_defaults("learned", method).items())
        check(lib.samix_learned_check(method.encode(), text.encode()))
        check(lib.samix_learned_check(method.encode(), b""))


def test_mix_methods_come_from_the_engine():
    mix = {o["name"]: o for o in raw_schema("trainer")["options"]}["mix"]
    assert samix.training.MIX_METHODS == tuple(mix["choices"])
    assert "alignmix" in samix.training.MIX_METHODS
    assert inspect.signature(samix.Trainer).parameters["mix"].default == mix["default"]


def test_option_schema_abi_validates_its_arguments():
    needed = ctypes.c_int64(0)
    with pytest.raises(InvalidArgumentError, match="option group"):
        check(lib.samix_option_schema(b"nope", None, 0, ctypes.addressof(needed)))
    with pytest.raises(InvalidArgumentError, match="no method"):
        check(lib.samix_option_schema(b"learned:mixup", None, 0, ctypes.addressof(needed)))
    with pytest.raises(SamixError):
        check(lib.samix_option_schema(None, None, 0, ctypes.addressof(needed)))
    check(lib.samix_option_schema(b"ssl", None, 0, ctypes.addressof(needed)))
    small = ctypes.create_string_buffer(8)
    with pytest.raises(InvalidArgumentError, match="too small"):
        check(lib.samix_option_schema(b"ssl", ctypes.addressof(small), len(small), ctypes.addressof(needed)))
    with pytest.raises(SamixError):
        check(lib.samix_option_schema(b"ssl", None, 16, ctypes.addressof(needed)))
    g = raw_schema("all")
    assert {x["group"] for x in g["groups"]} == {"learned", "pretrained", "ssl", "ssl_fit", "trainer", "optimizer"}


def test_docstrings_carry_the_schema():
    assert "lam_margin (real; default 0.08; range [0, 0.5))" in samix.SAMix.__doc__
    assert "queue_size (int; default" in samix.ssl.MoCo.__doc__


def test_python_validates_with_the_schema_ranges():
    with pytest.raises(InvalidArgumentError, match="lam_margin"):
        samix.SAMix(lam_margin=0.5)
    with pytest.raises(InvalidArgumentError, match="mixer_loss"):
        samix.AutoMix(mixer_loss="hinge")


@pytest.mark.parametrize("cls,method", [(samix.optim.SGD, "sgd"), (samix.optim.AdamW, "adamw")])
def test_optimizer_defaults_are_the_schema(cls, method):
    engine = engine_defaults("optimizer", method)
    fields = {f.name: f.default for f in __import__("dataclasses").fields(cls)}
    assert set(fields) == set(engine), (fields, engine)
    for name, text in engine.items():
        assert same(fields[name], text), (cls.__name__, name, fields[name], text)
    # OpenMixup's CIFAR SGD settings, pinned: a changed schema default fails here too.
    if method == "sgd":
        assert (cls().lr, cls().momentum, cls().weight_decay, cls().nesterov) == (0.1, 0.9, 5e-4, False)
