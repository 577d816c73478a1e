"""The real PneumoniaMNIST file and a training configuration quick enough for tests."""

from __future__ import annotations

from pathlib import Path

from diagnosis.ml.train import TrainConfig

NPZ = Path(__file__).resolve().parents[3] / "data" / "medmnist" / "pneumoniamnist.npz"
CLASS_NAMES = ("normal", "pneumonia")
# Small enough to train in a few seconds on 2 CPU cores, large enough to beat chance clearly.
QUICK = TrainConfig(width=16, epochs=3, batch_size=32, lr=5e-3, ema_decay=0.0, seed=0)
