#!/usr/bin/env bash
# Main job: trains ResNet-20 on Fashion-MNIST (Debian's dataset-fashion-mnist) with vanilla, Mixup,
# CutMix and SAMix and prints their test accuracy side by side. Extra arguments go to
# `python -m samix.demo` (e.g. --epochs 10 --train-size 60000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
"$VENV/bin/python" -m samix info
exec "$VENV/bin/python" -m samix.demo "$@"
