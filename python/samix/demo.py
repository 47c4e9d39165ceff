"""``python -m samix.demo``: trains a small ResNet on Fashion-MNIST with several mixing policies and
prints their test accuracy side by side.

Uses Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``) by default.
The defaults take a few minutes on two cores; ``--train-size``/``--epochs`` shorten or lengthen it.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import datasets, get_num_threads, models
from .optim import SGD
from .training import Trainer


def run(data: str = datasets.FASHION_MNIST_DIR, model: str = "resnet20", methods: tuple[str, ...] = ("vanilla", "mixup", "cutmix", "samix"),
        train_size: int = 4000, test_size: int = 2000, epochs: int = 3, batch_size: int = 64, lr: float = 0.1,
        seed: int = 0, progress: bool = True) -> dict[str, dict]:
    """Trains ``model`` once per method on the same class-balanced subset; returns method -> result."""
    train = datasets.fashion_mnist(data, "train")
    test = datasets.fashion_mnist(data, "test")
    rng = np.random.default_rng(seed)
    per_class = max(1, train_size // train.num_classes)
    idx = np.concatenate([rng.permutation(np.flatnonzero(train.labels == c))[:per_class]
                          for c in range(train.num_classes)])
    idx = rng.permutation(idx)
    x, y = train.images[idx], train.labels[idx]
    xt, yt = test.images[:test_size], test.labels[:test_size]
    print(f"samix demo: {model} on Fashion-MNIST, {len(y)} train / {len(yt)} test images, {epochs} epochs, "
          f"batch {batch_size}, {get_num_threads()} threads", file=sys.stderr, flush=True)
    results: dict[str, dict] = {}
    for method in methods:
        t0 = time.perf_counter()
        with models.create(model, num_classes=train.num_classes, in_channels=x.shape[1], seed=seed) as net, \
                Trainer(net, optimizer=SGD(lr=lr, momentum=0.9, weight_decay=5e-4), mix=method, seed=seed) as tr:
            print(f"-- {method}", file=sys.stderr, flush=True)
            tr.fit(x, y, epochs=epochs, batch_size=batch_size, progress=progress)
            ev = tr.evaluate(xt, yt)
        results[method] = {"accuracy": ev["accuracy"], "loss": ev["loss"], "seconds": time.perf_counter() - t0}
    print(f"\n{'method':<12} {'test acc':>9} {'test loss':>10} {'time':>8}")
    for method, r in results.items():
        print(f"{method:<12} {100 * r['accuracy']:>8.2f}% {r['loss']:>10.4f} {r['seconds']:>7.1f}s")
    sys.stdout.flush()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m samix.demo", description=__doc__.splitlines()[0])
    p.add_argument("--data", default=datasets.FASHION_MNIST_DIR, help="Fashion-MNIST directory (IDX files)")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--methods", default="vanilla,mixup,cutmix,samix", help="comma-separated mixing methods")
    p.add_argument("--train-size", type=int, default=4000)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    run(a.data, a.model, tuple(m.strip() for m in a.methods.split(",") if m.strip()), a.train_size, a.test_size,
        a.epochs, a.batch_size, a.lr, a.seed, progress=not a.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
