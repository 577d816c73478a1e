"""Architectures built by name, with any channel and class count, and their Grad-CAM layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diagnosis.ml.artifact import bundle_from_state
from diagnosis.ml.data import Normalisation
from diagnosis.ml.models import ResNet18, SmallCNN, build_model
from diagnosis.ml.predict import predict


@pytest.mark.parametrize(("arch", "cls"), [("small_cnn", SmallCNN), ("resnet18", ResNet18)])
@pytest.mark.parametrize(("channels", "classes"), [(1, 2), (3, 5)])
def test_build_by_name(arch: str, cls: type, channels: int, classes: int) -> None:
    model = build_model(arch, in_channels=channels, num_classes=classes, width=8).eval()
    assert isinstance(model, cls)
    with torch.no_grad():
        assert model(torch.zeros(4, channels, 28, 28)).shape == (4, classes)


def test_resnet18_is_cifar_style() -> None:
    model = build_model("resnet18", in_channels=1, num_classes=2)
    assert model.stem[0].kernel_size == (3, 3) and model.stem[0].stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    # 11.2 M parameters is the CIFAR ResNet-18 size (with a 512-to-2 head).
    assert 11.1e6 < sum(p.numel() for p in model.parameters()) < 11.3e6


def test_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("vgg", in_channels=1, num_classes=2)


def test_resnet_grad_cam_through_predict() -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", in_channels=3, num_classes=4, width=8)
    bundle = bundle_from_state(
        arch="resnet18",
        arch_kwargs={"width": 8, "dropout": 0.0},
        state_dict=model.state_dict(),
        class_names=["a", "b", "c", "d"],
        input_size=(32, 32),
        in_channels=3,
        normalisation=Normalisation(mean=(0.5,) * 3, std=(0.25,) * 3),
        temperature=1.0,
        threshold=None,
    )
    rng = np.random.default_rng(0)
    preds = predict(bundle, [rng.integers(0, 256, (50, 40, 3), dtype=np.uint8) for _ in range(3)])
    assert all(p.heatmap.shape == (50, 40) for p in preds)
    assert all(np.isclose(p.probabilities.sum(), 1.0) for p in preds)
