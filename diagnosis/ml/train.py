"""Training of image classifiers: augmentation, AdamW + one-cycle, selection and calibration on
the validation split, and a single final evaluation on the test split.

Nothing is ever chosen on the test split: the epoch (best validation AUC), the temperature
(validation NLL) and the binary threshold (validation Youden's J) all come from validation data.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diagnosis.ml.artifact import ModelBundle, bundle_from_state
from diagnosis.ml.corruptions import synthetic_sets
from diagnosis.ml.data import (
    TTA_VIEWS,
    ImageDataset,
    Normalisation,
    normalise,
    prepare_images,
    tta_views,
)
from diagnosis.ml.metrics import (
    Evaluation,
    evaluate,
    fit_temperature,
    macro_auc,
    predict_labels,
    softmax,
    youden_threshold,
)
from diagnosis.ml.models import build_model
from diagnosis.ml.ood import (
    DEFAULT_HOLDOUT,
    DEFAULT_METHOD,
    DEFAULT_QUANTILE,
    DEFAULT_SCALING,
    SCALINGS,
    OodDetector,
    fit_detector,
    parse_method,
)

THRESHOLD_RULES = ("youden", "accuracy")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run; defaults are the product's PneumoniaMNIST recipe."""

    arch: str = "small_cnn"
    width: int | None = 32
    dropout: float = 0.3
    epochs: int = 30
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    pct_start: float = 0.25
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.0
    # Augmentation. Shifts are a fraction of the image side; there is deliberately no vertical
    # flip (a chest X-ray is never upside down), and horizontal flip is off by default because it
    # moves the heart to the wrong side.
    max_shift: float = 0.1
    max_rotation: float = 10.0
    max_scale: float = 0.1
    hflip: bool = False
    # Exposure differs between scanners and sites: random contrast (x around the image mean) and
    # brightness (additive, on the [0, 1] scale).
    max_contrast: float = 0.0
    max_brightness: float = 0.0
    ema_decay: float = 0.99
    # Score validation and test (and later predictions) on logits averaged over TTA_VIEWS.
    tta: bool = True
    # Binary only. "youden": max sensitivity + specificity - 1 on val, which does not depend on
    # prevalence (val is 74 % pneumonia, the PneumoniaMNIST test split 62.5 %); "accuracy": max
    # val accuracy, which bakes the val prevalence into the cut.
    threshold_rule: str = "youden"
    seed: int = 0
    eval_batch_size: int = 512
    # Out-of-distribution detector fitted on the final weights' features of the training split,
    # threshold at this quantile of the validation split's scores (diagnosis.ml.ood); with a
    # holdout, that fraction of validation sets the threshold and the rest standardises.
    ood_method: str = DEFAULT_METHOD
    ood_quantile: float = DEFAULT_QUANTILE
    ood_holdout: float = DEFAULT_HOLDOUT
    ood_scaling: str = DEFAULT_SCALING

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2")
        if self.threshold_rule not in THRESHOLD_RULES:
            raise ValueError(f"threshold_rule must be one of {THRESHOLD_RULES}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("ema_decay must be in [0, 1)")
        parse_method(self.ood_method)
        if not 0.5 <= self.ood_quantile < 1.0:
            raise ValueError("ood_quantile must be in [0.5, 1)")
        if not 0.0 <= self.ood_holdout < 1.0:
            raise ValueError("ood_holdout must be in [0, 1)")
        if self.ood_scaling not in SCALINGS:
            raise ValueError(f"ood_scaling must be one of {SCALINGS}")

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a plain dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring unknown keys (artifacts from older versions)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def arch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `build_model` besides channels and classes."""
        return {"width": self.width, "dropout": self.dropout}


@dataclass(frozen=True)
class EpochReport:
    """What `progress` receives after each epoch: validation loss, AUC and arg-max accuracy of
    the weights being scored (the EMA weights when enabled), on the plain view and uncalibrated."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_auc: float
    val_accuracy: float
    elapsed_s: float
    lr: float
    is_best: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (NaN -> None)."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


@dataclass
class TrainResult:
    """Outcome of `train`: the selected weights, how they were chosen, and their test metrics."""

    state_dict: dict[str, torch.Tensor]
    history: list[EpochReport]
    best_epoch: int
    temperature: float
    threshold: float | None
    class_names: tuple[str, ...]
    normalisation: Normalisation
    config: TrainConfig
    in_channels: int
    input_size: tuple[int, int]
    val: Evaluation
    test: Evaluation
    train_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    ood: OodDetector | None = None

    def to_bundle(self, device: str | torch.device = "cpu") -> ModelBundle:
        """Return an eval-mode ModelBundle for `predict` or `save_artifact`."""
        return bundle_from_state(
            arch=self.config.arch,
            arch_kwargs=self.config.arch_kwargs(),
            state_dict=self.state_dict,
            class_names=self.class_names,
            input_size=self.input_size,
            in_channels=self.in_channels,
            normalisation=self.normalisation,
            temperature=self.temperature,
            threshold=self.threshold,
            config=self.config.to_dict(),
            device=device,
            ood=self.ood,
        )

    def metrics(self) -> dict[str, Any]:
        """Return JSON-ready metrics for a model version: test and val evaluations and history."""
        return {
            "test": self.test.to_dict(),
            "val": self.val.to_dict(),
            "best_epoch": self.best_epoch,
            "temperature": self.temperature,
            "threshold": self.threshold,
            "train_seconds": self.train_seconds,
            "history": [h.to_dict() for h in self.history],
            "config": self.config.to_dict(),
            "ood": None if self.ood is None else self.ood.summary(),
        }


ProgressCallback = Callable[[EpochReport], None]


def train(
    dataset: ImageDataset,
    config: TrainConfig | None = None,
    progress: ProgressCallback | None = None,
    device: str | torch.device = "cpu",
) -> TrainResult:
    """Train, select the epoch with the best validation AUC, calibrate on validation, test once.

    `progress` is called after every epoch; an exception it raises stops training and propagates
    unchanged (that is how a job is cancelled). Runs are reproducible for the same seed, device
    and thread count.
    """
    config = config or TrainConfig()
    device = torch.device(device)
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    # A CPU generator drives shuffling and augmentation, so the random stream is the same on
    # CPU and CUDA.
    gen = torch.Generator().manual_seed(config.seed)

    normalisation = Normalisation.fit(dataset.train_images)
    x_train = _uint8_nchw(dataset.train_images, device)
    y_train = torch.from_numpy(dataset.train_labels).to(device)
    x_val = _uint8_nchw(dataset.val_images, device)
    y_val = dataset.val_labels
    num_classes = dataset.num_classes

    model = build_model(
        config.arch,
        in_channels=dataset.channels,
        num_classes=num_classes,
        **config.arch_kwargs(),
    ).to(device)
    ema = _Ema(model, config.ema_decay) if config.ema_decay > 0 else None
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = _one_cycle(optimiser, config, math.ceil(len(y_train) / config.batch_size))

    history: list[EpochReport] = []
    best_key = (-math.inf, -math.inf)
    best_state: dict[str, torch.Tensor] = {}
    best_epoch = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(y_train), generator=gen).to(device)
        total, seen = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            if len(idx) < 2:
                continue  # batch norm cannot train on a single sample
            x = _augment(x_train[idx].float().div_(255.0), config, gen)
            x = normalise(x, normalisation)
            y = y_train[idx]
            loss = _loss(model, x, y, config, gen, num_classes)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            total += float(loss.detach()) * len(idx)
            seen += len(idx)

        scored = ema.model if ema is not None else model
        # Epochs are compared on the plain view: TTA would cost 7 forward passes per epoch.
        val_logits = _logits(scored, x_val, normalisation, config.eval_batch_size, tta=False)
        val_loss = float(F.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(y_val)))
        val_auc = macro_auc(y_val, softmax(val_logits))
        val_acc = float((val_logits.argmax(axis=1) == y_val).mean())
        # Higher AUC wins; a tie (common once validation AUC saturates) goes to lower loss.
        key = (round(val_auc, 4) if math.isfinite(val_auc) else -1.0, -val_loss)
        is_best = key > best_key
        if is_best:
            best_key, best_epoch = key, epoch
            best_state = {k: v.detach().to("cpu").clone() for k, v in scored.state_dict().items()}
        report = EpochReport(
            epoch=epoch,
            epochs=config.epochs,
            train_loss=total / max(seen, 1),
            val_loss=val_loss,
            val_auc=val_auc,
            val_accuracy=val_acc,
            elapsed_s=time.perf_counter() - started,
            lr=float(scheduler.get_last_lr()[0]),
            is_best=is_best,
        )
        history.append(report)
        if progress is not None:
            progress(report)

    model.load_state_dict(best_state)
    model.eval()
    val_logits = _logits(model, x_val, normalisation, config.eval_batch_size, config.tta)
    temperature = fit_temperature(val_logits, y_val)
    threshold = None
    if num_classes == 2:
        threshold = _choose_threshold(softmax(val_logits, temperature)[:, 1], y_val, config)
    x_test = _uint8_nchw(dataset.test_images, device)
    test_logits = _logits(model, x_test, normalisation, config.eval_batch_size, config.tta)
    ood = ood_fit_for(model, dataset, normalisation, config, device)
    common = {
        "class_names": dataset.class_names,
        "temperature": temperature,
        "threshold": threshold,
    }
    return TrainResult(
        state_dict=best_state,
        history=history,
        best_epoch=best_epoch,
        temperature=temperature,
        threshold=threshold,
        class_names=dataset.class_names,
        normalisation=normalisation,
        config=config,
        in_channels=dataset.channels,
        input_size=dataset.image_size,
        val=evaluate(val_logits, y_val, split="val", **common),
        test=evaluate(test_logits, dataset.test_labels, split="test", **common),
        train_seconds=time.perf_counter() - started,
        ood=ood,
    )


def ood_fit_for(
    model: nn.Module,
    dataset: ImageDataset,
    normalisation: Normalisation,
    config: TrainConfig,
    device: str | torch.device = "cpu",
) -> OodDetector:
    """Fit the OOD detector of `config` on `model`'s features of the training split (threshold
    from validation) and measure its flag rate on the test split, the false-flag rate a user
    will see on in-distribution images."""
    device = torch.device(device)
    was_training = model.training
    model.eval()

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        return normalise(batch.to(device).float().div_(255.0), normalisation)

    def raw(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)

    detector = fit_detector(
        model,
        raw(dataset.train_images),
        dataset.train_labels,
        raw(dataset.val_images),
        num_classes=dataset.num_classes,
        method=config.ood_method,
        quantile=config.ood_quantile,
        holdout=config.ood_holdout,
        scaling=config.ood_scaling,
        seed=config.seed,
        prepare=prepare,
    )
    test_scores = detector.score_model(model, raw(dataset.test_images), prepare=prepare)
    detector.rates["test_flag_rate"] = float((test_scores > detector.threshold).mean())
    detector.rates["test_images"] = int(len(test_scores))
    detector.rates["synthetic"] = ood_synthetic_rates(
        model, detector, dataset, normalisation, device=device
    )
    model.train(was_training)
    return detector


def ood_synthetic_rates(
    model: nn.Module,
    detector: OodDetector,
    dataset: ImageDataset,
    normalisation: Normalisation,
    *,
    device: str | torch.device = "cpu",
) -> dict[str, dict[str, float | int]]:
    """Detection rate of `detector` on each synthetic out-of-distribution set made from the
    test split (diagnosis.ml.corruptions), resized as an upload is: {set: {images, flagged,
    rate}}. The model card shows them beside the test split's false-flag rate."""
    rates: dict[str, dict[str, float | int]] = {}
    for name, images in synthetic_sets(dataset.test_images).items():
        if not images:
            continue
        x = prepare_images(
            images,
            input_size=dataset.image_size,
            channels=dataset.channels,
            normalisation=normalisation,
        ).to(torch.device(device))
        flagged = int((detector.score_model(model, x) > detector.threshold).sum())
        rates[name] = {"images": len(images), "flagged": flagged, "rate": flagged / len(images)}
    return rates


def _one_cycle(
    optimiser: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    total = config.epochs * steps_per_epoch
    if total < 3:
        return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda _step: 1.0)
    # OneCycleLR divides by (pct_start * total - 1): tiny runs need a warm-up of over one step.
    pct = min(max(config.pct_start, 1.5 / total), 0.5)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.lr, total_steps=total, pct_start=pct
    )


def _choose_threshold(p1: np.ndarray, y: np.ndarray, config: TrainConfig) -> float:
    if config.threshold_rule == "youden":
        return youden_threshold(y, p1)
    # "accuracy": the cut with the highest validation accuracy, nearest 0.5 on ties.
    values = np.unique(p1)
    cuts = np.r_[0.0, (values[:-1] + values[1:]) / 2, 1.0]
    accs = np.array([(predict_labels(np.c_[1 - p1, p1], c) == y).mean() for c in cuts])
    best = np.flatnonzero(accs == accs.max())
    return float(cuts[best[np.argmin(np.abs(cuts[best] - 0.5))]])


def _loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    gen: torch.Generator,
    num_classes: int,
) -> torch.Tensor:
    if config.mixup_alpha <= 0:
        return F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
    lam = float(torch.distributions.Beta(config.mixup_alpha, config.mixup_alpha).sample())
    perm = torch.randperm(len(y), generator=gen).to(x.device)
    logits = model(lam * x + (1 - lam) * x[perm])
    ls = config.label_smoothing
    return lam * F.cross_entropy(logits, y, label_smoothing=ls) + (1 - lam) * F.cross_entropy(
        logits, y[perm], label_smoothing=ls
    )


def _augment(x: torch.Tensor, config: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Random affine (rotation, scale, shift, optional horizontal flip), then random contrast and
    brightness, of a [0, 1] batch."""
    n = x.shape[0]
    geometric = config.max_shift > 0 or config.max_rotation > 0 or config.max_scale > 0
    if not (geometric or config.hflip or config.max_contrast > 0 or config.max_brightness > 0):
        return x

    def uniform(bound: float) -> torch.Tensor:
        return (torch.rand(n, generator=gen) * 2 - 1) * bound

    angle = uniform(math.radians(config.max_rotation))
    scale = 1.0 + uniform(config.max_scale)
    shift = torch.stack([uniform(2 * config.max_shift), uniform(2 * config.max_shift)], dim=1)
    flip = torch.ones(n)
    if config.hflip:
        flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
            torch.stack([sin * flip, cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    ).to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Border padding repeats the edge instead of inventing black bars the scanner never makes.
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if config.max_contrast > 0 or config.max_brightness > 0:
        contrast = (1.0 + uniform(config.max_contrast)).view(n, 1, 1, 1).to(x.device)
        brightness = uniform(config.max_brightness).view(n, 1, 1, 1).to(x.device)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean + brightness).clamp_(0.0, 1.0)
    return x


@torch.no_grad()
def _logits(
    model: nn.Module,
    x_uint8: torch.Tensor,
    normalisation: Normalisation,
    batch_size: int,
    tta: bool,
) -> np.ndarray:
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(x_uint8), batch_size):
        x = normalise(x_uint8[i : i + batch_size].float().div_(255.0), normalisation)
        if tta:
            out.append(model(tta_views(x)).view(len(TTA_VIEWS), len(x), -1).mean(dim=0).cpu())
        else:
            out.append(model(x).cpu())
    model.train(was_training)
    return torch.cat(out).double().numpy()


def _uint8_nchw(images: np.ndarray, device: torch.device) -> torch.Tensor:
    # Kept as uint8 on the device (a quarter of float32's memory); each batch converts itself.
    return (
        torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().to(device)
    )


class _Ema:
    """Exponential moving average of a model's weights and batch-norm statistics."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.steps = 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        # Warm-up: early on the average would otherwise be dominated by the random init.
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for ema_v, v in zip(
            self.model.state_dict().values(), model.state_dict().values(), strict=True
        ):
            if ema_v.dtype.is_floating_point:
                ema_v.mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                ema_v.copy_(v)
