"""A PyTorch training loop with ``samix.Mixup`` in place of ``timm.data.Mixup`` (timm is not needed).

The two lines that change from a timm script::

    - from timm.data import Mixup
    + from samix import Mixup
      mixup_fn = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=10)
      x, targets = mixup_fn(x, y)      # x: CPU float32 tensor, mixed in place; targets: (N, 10) tensor

samix mixes CPU tensors (float32, contiguous, no grad) zero-copy, so mix before ``x.to(device)``.
The second loop mixes inside the DataLoader workers with ``samix.MixupCollate`` (timm's
``FastCollateMixup``): uint8 batches, normalised after loading.

Run: ``python examples/timm_replacement.py --steps 100`` (Fashion-MNIST from the Debian package
``dataset-fashion-mnist``; ``--workers 2`` uses spawn workers for the collate loop).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import samix

MEAN, STD = 0.286, 0.353


def soft_target_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """timm's SoftTargetCrossEntropy: mean over the batch of sum(-t * log_softmax(logits))."""
    return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()


def small_cnn(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(32, num_classes))


class U8Samples(torch.utils.data.Dataset):
    """(uint8 (1, 28, 28) image, int label) pairs, as a torchvision dataset with PILToTensor gives."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.x[i]), int(self.y[i])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers (spawn) for the collate loop")
    args = ap.parse_args()
    torch.manual_seed(0)
    x, y = samix.datasets.fashion_mnist(split="train")
    xt, yt = samix.datasets.fashion_mnist(split="test")
    x, y = x[: args.steps * args.batch_size], y[: args.steps * args.batch_size]

    # 1. timm-style loop: mix the float batch in place before the forward pass.
    model = small_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    mixup_fn = samix.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=10, seed=0)
    t0 = time.perf_counter()
    for step in range(args.steps):
        sl = slice(step * args.batch_size, (step + 1) * args.batch_size)
        xb = (torch.from_numpy(x[sl]).float() / 255.0 - MEAN) / STD   # contiguous float32 CPU tensor
        xb, targets = mixup_fn(xb, torch.from_numpy(y[sl]))            # same tensor back, mixed in place
        loss = soft_target_cross_entropy(model(xb), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"Mixup loop: {args.steps} steps in {time.perf_counter() - t0:.1f}s, final loss {loss.item():.4f}")

    # 2. Mixing in the DataLoader (uint8 batches), timm's FastCollateMixup role.
    collate = samix.MixupCollate(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=10, seed=0)
    loader = torch.utils.data.DataLoader(U8Samples(x, y), batch_size=args.batch_size, shuffle=True,
                                         drop_last=True, collate_fn=collate, num_workers=args.workers,
                                         multiprocessing_context="spawn" if args.workers else None)
    for xb_u8, targets in loader:
        xb = (xb_u8.float() / 255.0 - MEAN) / STD
        loss = soft_target_cross_entropy(model(xb), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        xe = (torch.from_numpy(xt[:1000]).float() / 255.0 - MEAN) / STD
        acc = (model(xe).argmax(1).numpy() == yt[:1000]).mean()
    print(f"MixupCollate loop: final loss {loss.item():.4f}, test accuracy (1000 images) {acc:.3f}")


if __name__ == "__main__":
    main()
