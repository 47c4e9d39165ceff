"""Shared pytest configuration for the Python tests of samix.

The tests import the installed ``samix`` package (``pip install .``); to test a development build
without installing, run with ``PYTHONPATH=python SAMIX_LIBRARY=/path/to/libsamix.so``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[2]

settings.register_profile(
    "samix",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=os.environ.get("SAMIX_TEST_RANDOM") != "1",
)
settings.load_profile("samix")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    from samix.datasets import FASHION_MNIST_DIR

    p = Path(FASHION_MNIST_DIR)
    if not (p / "train-labels-idx1-ubyte.gz").exists():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    return p
