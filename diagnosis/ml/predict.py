"""Inference: calibrated probabilities, uncertainty and Grad-CAM heat-maps for images and series."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diagnosis.ml.artifact import ModelBundle
from diagnosis.ml.data import prepare_images, tta_views
from diagnosis.ml.metrics import predict_labels
from diagnosis.ml.ood import captured_features, pixel_stats, stage_capture


@dataclass
class Prediction:
    """One image's result. `probabilities` are temperature-calibrated, in `class_names` order,
    computed the way the model's stored metrics were (logits averaged over TTA_VIEWS when it was
    trained with `tta=True`, else the plain image).

    `entropy` is the predictive entropy of `probabilities` divided by log(K) (0 = certain,
    1 = uniform). `tta_std` is the standard deviation of the calibrated probability of the
    predicted class over the deterministic test-time views in TTA_VIEWS (small shifts and
    rotations): how much the answer moves when the image moves a little. `uncertainty` is the
    normalised entropy of the probabilities averaged over those views, i.e. the total predictive
    uncertainty including the spread between views. `heatmap` is Grad-CAM for the predicted class
    at the input image's original (H, W), scaled to [0, 1].

    `ood_score` is the model's out-of-distribution score of the plain image (diagnosis.ml.ood)
    and `in_scope` is whether it is at or under `ood_threshold`; all three are None when the
    model version has no detector (an artifact from before detectors): unchecked, not in scope.
    """

    class_names: tuple[str, ...]
    probabilities: np.ndarray
    predicted_index: int
    predicted_class: str
    confidence: float
    entropy: float
    tta_std: float
    uncertainty: float
    heatmap: np.ndarray
    ood_score: float | None = None
    ood_threshold: float | None = None
    in_scope: bool | None = None

    def to_dict(self, *, include_heatmap: bool = False) -> dict[str, Any]:
        """Return plain JSON-ready values; the heat-map (a nested list) only when asked."""
        out: dict[str, Any] = {
            "class_names": list(self.class_names),
            "probabilities": {c: float(p) for c, p in zip(self.class_names, self.probabilities)},
            "predicted_index": self.predicted_index,
            "predicted_class": self.predicted_class,
            "confidence": self.confidence,
            "entropy": self.entropy,
            "tta_std": self.tta_std,
            "uncertainty": self.uncertainty,
            "ood_score": self.ood_score,
            "ood_threshold": self.ood_threshold,
            "in_scope": self.in_scope,
        }
        if include_heatmap:
            out["heatmap"] = self.heatmap.tolist()
        return out


@dataclass
class SeriesPrediction:
    """A multi-frame result: mean of the frames' calibrated probabilities, decided with the same
    threshold as a single image; per-frame predictions (with heat-maps) are kept in `frames`.

    `key_frame` is the index of the frame giving the series' predicted class the highest
    probability, the one a reviewer should look at first. `uncertainty` is the normalised
    entropy of the mean probabilities, so disagreement between frames raises it.

    `ood_score` is the highest frame score and `in_scope` holds only when every frame is in
    scope: one frame unlike the training data is enough to question the whole series.
    """

    class_names: tuple[str, ...]
    probabilities: np.ndarray
    predicted_index: int
    predicted_class: str
    confidence: float
    uncertainty: float
    key_frame: int
    frames: list[Prediction] = field(default_factory=list)
    ood_score: float | None = None
    ood_threshold: float | None = None
    in_scope: bool | None = None

    @property
    def heatmaps(self) -> list[np.ndarray]:
        """Per-frame Grad-CAM heat-maps, in frame order."""
        return [f.heatmap for f in self.frames]

    def to_dict(self, *, include_heatmaps: bool = False) -> dict[str, Any]:
        """Return plain JSON-ready values, with per-frame results."""
        return {
            "class_names": list(self.class_names),
            "probabilities": {c: float(p) for c, p in zip(self.class_names, self.probabilities)},
            "predicted_index": self.predicted_index,
            "predicted_class": self.predicted_class,
            "confidence": self.confidence,
            "uncertainty": self.uncertainty,
            "key_frame": self.key_frame,
            "ood_score": self.ood_score,
            "ood_threshold": self.ood_threshold,
            "in_scope": self.in_scope,
            "frames": [f.to_dict(include_heatmap=include_heatmaps) for f in self.frames],
        }


def predict(
    model_bundle: ModelBundle,
    images: Sequence[np.ndarray],
    *,
    batch_size: int = 256,
    tta: bool = True,
    heatmaps: bool = True,
) -> list[Prediction]:
    """Classify images of any size (grey or RGB) in batched forward passes, one Prediction each.

    `heatmaps=False` skips Grad-CAM (no backward pass): each `heatmap` is then an empty (0, 0)
    array. For callers that keep only the answer (shadow scoring).

    `tta=False` runs only the plain view (one forward pass per batch): `tta_std` is then 0,
    `uncertainty` equals `entropy`, and a model trained with `tta=True` is scored on the plain
    view, which differs slightly from how its metrics were measured.
    """
    if len(images) == 0:
        return []
    bundle = model_bundle
    averaged = bool(bundle.config.get("tta", False))
    sizes = [np.asarray(img).shape[:2] for img in images]
    out: list[Prediction] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        x = prepare_images(
            chunk,
            input_size=bundle.input_size,
            channels=bundle.in_channels,
            normalisation=bundle.normalisation,
        ).to(bundle.device)
        # One forward pass over the plain images and their TTA views: the OOD score reads the
        # plain images' stage features from it, and Grad-CAM its cam-layer activations.
        with stage_capture(bundle.model) as captured:
            view_logits, cams = _views_and_cams(
                bundle, x, tta=tta, averaged=averaged, cams=heatmaps
            )
            feats = (
                [f[: len(x)] for f in captured_features(bundle.model, captured)]
                if bundle.ood is not None
                else []
            )
        plain = view_logits[0]
        logits = view_logits.mean(dim=0) if averaged and tta else plain
        probs = _calibrated(logits, bundle.temperature)
        pred = predict_labels(probs, bundle.threshold)
        views = np.stack([_calibrated(v, bundle.temperature) for v in view_logits])
        ood = (
            bundle.ood.score(
                feats,
                plain.double().cpu().numpy(),
                pixel_stats(x) if bundle.ood.needs_pixels else None,
            )
            if bundle.ood is not None
            else None
        )
        for i, (p, k) in enumerate(zip(probs, pred, strict=True)):
            height, width = sizes[start + i]
            out.append(
                Prediction(
                    class_names=bundle.class_names,
                    probabilities=p.astype(np.float64),
                    predicted_index=int(k),
                    predicted_class=bundle.class_names[int(k)],
                    confidence=float(p[k]),
                    entropy=normalised_entropy(p),
                    tta_std=float(views[:, i, k].std()),
                    uncertainty=normalised_entropy(views[:, i].mean(axis=0)),
                    heatmap=(
                        _resize_cam(cams[i], (height, width))
                        if cams is not None
                        else np.zeros((0, 0), dtype=np.float32)
                    ),
                    **_scope(ood, i, bundle),
                )
            )
    return out


@torch.no_grad()
def class_probabilities(
    model_bundle: ModelBundle, images: np.ndarray, *, batch_size: int = 256
) -> np.ndarray:
    """Calibrated class probabilities (N, K) of uint8 images (N, H, W, C), scored the way the
    version's own test metrics were (its TTA views averaged when it was trained with TTA),
    without heat-maps or scope checks: the held-out validation of a version."""
    bundle = model_bundle
    averaged = bool(bundle.config.get("tta", False))
    was_training = bundle.model.training
    bundle.model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = prepare_images(
            list(images[start : start + batch_size]),
            input_size=bundle.input_size,
            channels=bundle.in_channels,
            normalisation=bundle.normalisation,
        ).to(bundle.device)
        if averaged:
            logits = bundle.model(tta_views(x)).view(-1, len(x), len(bundle.class_names)).mean(0)
        else:
            logits = bundle.model(x)
        out.append(_calibrated(logits, bundle.temperature))
    bundle.model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, len(bundle.class_names)))


def predict_series(
    model_bundle: ModelBundle,
    frames: Sequence[np.ndarray] | np.ndarray,
    *,
    tta: bool = True,
) -> SeriesPrediction:
    """Predict every frame of a series and aggregate by the mean of calibrated probabilities.

    `frames` is a list of 2-D/3-D images, or one array (F, H, W) of grey frames or (F, H, W, C).
    """
    if isinstance(frames, np.ndarray):
        if frames.ndim not in (3, 4):
            raise ValueError(
                f"a series array must be (F, H, W) or (F, H, W, C), got {frames.shape}"
            )
        frames = list(frames)
    if len(frames) == 0:
        raise ValueError("a series needs at least one frame")
    return aggregate_series(model_bundle, predict(model_bundle, frames, tta=tta))


def aggregate_series(
    model_bundle: ModelBundle, per_frame: Sequence[Prediction]
) -> SeriesPrediction:
    """Combine one series' per-frame predictions (mean of calibrated probabilities, decided
    with the bundle's threshold), so a worker can predict many series in one batch and split
    the results afterwards."""
    if len(per_frame) == 0:
        raise ValueError("a series needs at least one frame")
    stacked = np.stack([f.probabilities for f in per_frame])
    mean = stacked.mean(axis=0)
    k = int(predict_labels(mean[None], model_bundle.threshold)[0])
    scores = [f.ood_score for f in per_frame]
    scope: dict[str, Any] = {}
    if all(s is not None for s in scores):
        scope = {
            "ood_score": float(max(scores)),  # type: ignore[type-var]
            "ood_threshold": per_frame[0].ood_threshold,
            "in_scope": all(bool(f.in_scope) for f in per_frame),
        }
    return SeriesPrediction(
        class_names=model_bundle.class_names,
        probabilities=mean,
        predicted_index=k,
        predicted_class=model_bundle.class_names[k],
        confidence=float(mean[k]),
        uncertainty=normalised_entropy(mean),
        key_frame=int(stacked[:, k].argmax()),
        frames=list(per_frame),
        **scope,
    )


def normalised_entropy(p: np.ndarray) -> float:
    """Shannon entropy of a probability vector divided by log(K), in [0, 1]."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)
    return float(min(1.0, max(0.0, -(p * np.log(p)).sum() / math.log(len(p)))))


def _scope(scores: np.ndarray | None, i: int, bundle: ModelBundle) -> dict[str, Any]:
    if scores is None or bundle.ood is None:
        return {}
    score = float(scores[i])
    threshold = bundle.ood.threshold
    return {"ood_score": score, "ood_threshold": threshold, "in_scope": score <= threshold}


def _calibrated(logits: torch.Tensor, temperature: float) -> np.ndarray:
    return torch.softmax(logits.double() / temperature, dim=1).cpu().numpy()


def _views_and_cams(
    bundle: ModelBundle, x: torch.Tensor, *, tta: bool, averaged: bool, cams: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits of every view (V, N, K), view 0 the plain images (V = 1 without TTA), and the
    plain images' Grad-CAM maps (N, h, w), each peaking at 1, for the predicted class (of the
    TTA-averaged logits when the model was trained that way).

    One forward pass over all views; autograd records only from the cam layer on, so the
    gradient costs a backward pass through the head alone. Samples are independent in eval
    mode, so one backward gives every sample's gradient. `cams=False`: the logits alone, with
    no graph and no backward pass, and None for the maps."""
    model = bundle.model
    model.eval()
    n = x.shape[0]
    batch = torch.cat([x, tta_views(x)[n:]]) if tta else x
    if not cams:
        with torch.no_grad():
            logits = model(batch)
        return logits.view(-1, n, logits.shape[-1]).detach(), None
    captured: list[torch.Tensor] = []

    def from_cam_layer(_m: nn.Module, _i: Any, output: torch.Tensor) -> torch.Tensor:
        # The layers before this one ran without a graph; the outer no_grad restores the
        # mode when the pass ends.
        torch.set_grad_enabled(True)
        leaf = output.detach().requires_grad_()
        captured.append(leaf)
        return leaf

    layer: nn.Module = model.cam_layer  # type: ignore[assignment]
    handle = layer.register_forward_hook(from_cam_layer)
    try:
        with torch.no_grad():
            logits = model(batch)
            view_logits = logits.view(-1, n, logits.shape[-1])
            chosen = view_logits.mean(dim=0) if tta and averaged else view_logits[0]
            target = predict_labels(
                _calibrated(chosen.detach(), bundle.temperature), bundle.threshold
            )
            index = torch.as_tensor(target, device=logits.device).long()[:, None]
            with torch.enable_grad():
                score = view_logits[0].gather(1, index).sum()
                (grads,) = torch.autograd.grad(score, captured[0])
    finally:
        handle.remove()
    acts = captured[0].detach()[:n]
    weights = grads[:n].mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * acts).sum(dim=1))
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12).view(-1, 1, 1)
    return view_logits.detach(), (cam / peak).cpu()


def _resize_cam(cam: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    resized = F.interpolate(
        cam[None, None].float(), size=size, mode="bilinear", align_corners=False
    )
    resized = resized[0, 0].clamp_min(0.0)
    # Rescale after resizing: interpolation between cells lowers the peak below 1.
    peak = float(resized.max())
    return (resized / peak if peak > 0 else resized).clamp(0.0, 1.0).numpy().astype(np.float32)
