"""Out-of-distribution detection on a classifier's own features, fitted at training time.

A softmax probability says nothing about whether the input resembles the training data: a
brain MRI fed to a chest X-ray CNN routinely gets p(pneumonia) = .97. The detector here asks
instead how far the image's internal representation lies from the training images'.

Components (each a score where higher = less like the training data):
  * "maha": class-conditional Mahalanobis distance with a shared covariance (Lee et al.,
    NeurIPS 2018) on globally pooled activations of the last conv stage (the penultimate
    features the classifier's linear layer reads).
  * "maha-layers": the same on every conv stage; early stages see low-level statistics (noise,
    blank frames, inverted contrast) that the last stage may map close to a class mean.
  * "knn": distance to the k-th nearest training image on L2-normalised penultimate features
    (Sun et al., ICML 2022), which needs no Gaussian assumption.
  * "energy": -logsumexp(logits) (Liu et al., NeurIPS 2020).
  * "corruption": a linear head on the concatenated stage features, trained to tell the
    training images from synthetic corruptions of them (rotated by 90/180/270 degrees, a part
    of the film enlarged, inverted grey levels, washed out; Hendrycks et al., ICLR 2019,
    "outlier exposure"). A rotated or cropped chest film is still a chest film at the level
    of texture, so the distance scores above barely move; the head learns what "upright and
    whole" looks like in the model's own features.
  * "pixels": Mahalanobis distance of the input image's own contrast and roughness (log
    standard deviation, log mean neighbour difference) to the training images'. It needs no
    network and sees what the features smooth away: a faint, flat or noise-textured frame has
    none of a film's contrast, however its features land. (A coarse layout grid was tried too:
    in 51 dimensions the contrast deviation drowned; see bench/diagnosis_ml_notes.md.)
Each component is put on a common scale on the validation split (in-distribution data the
weights never trained on) and the score is the largest of them. Scaling "std" subtracts the
mean and divides by the standard deviation; "tail" subtracts the median and divides by the
distance from the median to the TAIL_QUANTILE, so every component's own validation tail lands
at 1.0 and no component's heavier tail sets the threshold for all (with "std" a well-separating
but wide component such as "corruption" almost never reaches the shared threshold). The
threshold is a high quantile of the validation scores, so about (1 - quantile) of
in-distribution images are flagged by construction. With `holdout` the validation split is cut
in two: one part scales, the other sets the threshold. Everything is stored as plain
lists/tensors so an artifact stays loadable with torch.load(weights_only=True).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medai_ml.plain import to_plain

COMPONENTS: tuple[str, ...] = ("maha", "maha-layers", "knn", "energy", "corruption", "pixels")
# Chosen on validation data only (bench/diagnosis_ml_notes.md, "Applicability, tuned"): q .995
# because the PneumoniaMNIST test split is flagged 2-3x more than validation; the corruption
# head with "tail" scaling had the best worst-case detection of corrupted validation films;
# "pixels" then lifted that worst case (faint noise-textured frames) from .41 to .90.
DEFAULT_METHOD = "maha-layers+knn+corruption+pixels"
DEFAULT_QUANTILE = 0.995
DEFAULT_HOLDOUT = 0.0
SCALINGS: tuple[str, ...] = ("std", "tail")
DEFAULT_SCALING = "tail"
TAIL_QUANTILE = 0.99
KNN_K = 10
KNN_MAX_BANK = 2048
# Shrinkage towards a scaled identity keeps the shared covariance invertible when a stage has
# more channels than the data pins down (and for tiny test data sets).
SHRINKAGE = 0.05
# The corruption head's synthetic negatives, one per training image drawn uniformly: quarter
# turns, a crop of CROP_SIDE of each side enlarged back to full size, inverted grey levels, and
# the contrast around the image mean cut to LOW_CONTRAST (a wrongly windowed or washed-out film).
CORRUPTIONS: tuple[str, ...] = ("rot90", "rot180", "rot270", "crop", "invert", "lowcontrast")
CROP_SIDE = (0.4, 0.65)
LOW_CONTRAST = (0.05, 0.2)
# L2 penalty of the corruption head (on standardised features), per training example.
HEAD_L2 = 1e-3
HEAD_MAX_IMAGES = 8192
# The stages whose pooled activations are scored, in order; the last is the penultimate layer.
STAGE_NAMES: tuple[tuple[str, ...], ...] = (
    ("block1", "block2", "block3"),  # SmallCNN
    ("layer1", "layer2", "layer3", "layer4"),  # ResNet18
)


def parse_method(method: str) -> tuple[str, ...]:
    """Split "maha-layers+knn" into its components; raises ValueError on an unknown one."""
    parts = tuple(p.strip() for p in method.split("+") if p.strip())
    unknown = [p for p in parts if p not in COMPONENTS]
    if not parts or unknown:
        raise ValueError(f"unknown OOD method {method!r}; combine {', '.join(COMPONENTS)} with '+'")
    return parts


def stage_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's conv stages whose pooled activations are features (last = penultimate)."""
    children = dict(model.named_children())
    for names in STAGE_NAMES:
        if all(n in children for n in names):
            return [(n, children[n]) for n in names]
    raise ValueError(f"no known feature stages in {type(model).__name__}")


@contextmanager
def stage_capture(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Record each stage's pooled activations (detached) during whatever forward pass runs
    inside the block, so prediction scores OOD from the pass it already makes."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: captured.__setitem__(name, out.detach().mean(dim=(2, 3)))
        )
        for name, module in stage_modules(model)
    ]
    try:
        yield captured
    finally:
        for hook in hooks:
            hook.remove()


def captured_features(model: nn.Module, captured: dict[str, torch.Tensor]) -> list[np.ndarray]:
    """The stage features `stage_capture` recorded, in stage order (float64 numpy)."""
    return [captured[name].double().cpu().numpy() for name, _m in stage_modules(model)]


@torch.no_grad()
def extract_features(
    model: nn.Module,
    x: torch.Tensor,
    *,
    batch_size: int = 512,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Run the model once on a batch (N, C, H, W): per-stage globally average-pooled activations
    (each (N, D_stage), float64) and the logits (N, K). `x` is normalised, or raw with `prepare`
    turning each slice into the model's input (so a large uint8 set is never all float)."""
    model.eval()
    stages = stage_modules(model)
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: captured.__setitem__(name, out.mean(dim=(2, 3)))
        )
        for name, module in stages
    ]
    feats: list[list[np.ndarray]] = [[] for _ in stages]
    logits: list[np.ndarray] = []
    try:
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size]
            out = model(prepare(chunk) if prepare is not None else chunk)
            logits.append(out.double().cpu().numpy())
            for i, (name, _m) in enumerate(stages):
                feats[i].append(captured[name].double().cpu().numpy())
    finally:
        for hook in hooks:
            hook.remove()
    if not logits:
        return [np.zeros((0, 1)) for _ in stages], np.zeros((0, 1))
    return [np.concatenate(f) for f in feats], np.concatenate(logits)


def pixel_stats(x: torch.Tensor) -> np.ndarray:
    """Per image of a model-input batch (N, C, H, W): the logarithms of its standard deviation
    (contrast) and of the mean absolute difference of neighbouring pixels (roughness), float64
    (N, 2). Logarithms, because a faint or flat frame differs from a film by a factor, not by
    an amount."""
    x = x.detach().double()
    flat = x.flatten(1)
    spread = flat.std(dim=1) if flat.shape[1] > 1 else flat[:, 0] * 0
    rough = x.new_zeros(len(x))
    if x.shape[-1] > 1:
        rough = rough + (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))
    if x.shape[-2] > 1:
        rough = rough + (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return torch.stack([spread, rough], dim=1).clamp_min(1e-6).log().cpu().numpy()


def pixel_features(
    x: torch.Tensor,
    *,
    batch_size: int = 512,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """pixel_stats of a batch, `x` normalised or raw with `prepare` as in extract_features."""
    parts = []
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        parts.append(pixel_stats(prepare(chunk) if prepare is not None else chunk))
    return np.concatenate(parts) if parts else np.zeros((0, 1))


@dataclass
class _Gaussian:
    """Class means and a shared precision matrix of one stage's features."""

    means: np.ndarray  # (K, D)
    precision: np.ndarray  # (D, D)

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, num_classes: int) -> _Gaussian:
        dim = features.shape[1]
        means = np.zeros((num_classes, dim))
        centred = np.empty_like(features)
        for k in range(num_classes):
            rows = labels == k
            if rows.any():
                means[k] = features[rows].mean(axis=0)
                centred[rows] = features[rows] - means[k]
            else:
                # A class absent from training has no mean; it must never be the nearest one.
                means[k] = np.inf
        cov = centred.T @ centred / max(len(features) - 1, 1)
        scale = float(np.trace(cov)) / dim or 1.0
        cov = (1 - SHRINKAGE) * cov + SHRINKAGE * scale * np.eye(dim)
        return cls(means=means, precision=np.linalg.pinv(cov, hermitian=True))

    def distance(self, features: np.ndarray) -> np.ndarray:
        best = np.full(len(features), np.inf)
        for mean in self.means:
            if not np.isfinite(mean).all():
                continue
            d = features - mean
            best = np.minimum(best, np.einsum("nd,de,ne->n", d, self.precision, d))
        # Square root so the scale grows like a distance, which standardises more evenly.
        return np.sqrt(np.maximum(best, 0.0))


@dataclass
class _CorruptionHead:
    """Logistic regression on standardised, concatenated stage features: training images (0)
    against synthetic corruptions of them (1). Its logit is the "corruption" score."""

    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    weight: np.ndarray  # (D,)
    bias: float

    @classmethod
    def fit(cls, clean: Sequence[np.ndarray], corrupt: Sequence[np.ndarray]) -> _CorruptionHead:
        x = np.concatenate([np.concatenate(clean, axis=1), np.concatenate(corrupt, axis=1)])
        y = np.r_[np.zeros(len(clean[0])), np.ones(len(corrupt[0]))]
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-12] = 1.0
        z = torch.from_numpy((x - mean) / scale)
        target = torch.from_numpy(y)
        w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, target)
            loss = loss + HEAD_L2 * (w @ w) / 2
            loss.backward()
            return loss

        with torch.enable_grad():
            optimiser.step(closure)
        return cls(
            mean=mean,
            scale=scale,
            weight=w.detach().numpy().copy(),
            bias=float(b.detach()[0]),
        )

    def logit(self, feats: Sequence[np.ndarray]) -> np.ndarray:
        x = np.concatenate(list(feats), axis=1)
        return ((x - self.mean) / self.scale) @ self.weight + self.bias

    def to_payload(self) -> dict[str, torch.Tensor]:
        return {
            "mean": torch.from_numpy(self.mean.astype(np.float64)),
            "scale": torch.from_numpy(self.scale.astype(np.float64)),
            "weight": torch.from_numpy(self.weight.astype(np.float64)),
            "bias": torch.tensor([self.bias], dtype=torch.float64),
        }

    @classmethod
    def from_payload(cls, data: dict[str, torch.Tensor]) -> _CorruptionHead:
        return cls(
            mean=data["mean"].double().numpy(),
            scale=data["scale"].double().numpy(),
            weight=data["weight"].double().numpy(),
            bias=float(data["bias"].double().reshape(-1)[0]),
        )


def corrupt_images(x: torch.Tensor, *, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """One synthetic corruption (CORRUPTIONS, drawn uniformly) of each image of a batch
    (N, C, H, W, square): uint8 images are inverted as 255 - x, normalised ones as -x. Returns
    the corrupted batch (same dtype) and each image's corruption name."""
    gen = torch.Generator().manual_seed(seed)
    kinds = torch.randint(len(CORRUPTIONS), (len(x),), generator=gen)
    out = x.clone()
    for k in (1, 2, 3):
        rows = kinds == CORRUPTIONS.index(f"rot{90 * k}")
        if rows.any():
            out[rows] = torch.rot90(x[rows], k, dims=(2, 3))
    rows = kinds == CORRUPTIONS.index("invert")
    if rows.any():
        out[rows] = 255 - x[rows] if x.dtype == torch.uint8 else -x[rows]
    rows = kinds == CORRUPTIONS.index("lowcontrast")
    if rows.any():
        lo, hi = LOW_CONTRAST
        c = lo + (hi - lo) * torch.rand(int(rows.sum()), 1, 1, 1, generator=gen)
        src = x[rows].float()
        mean = src.mean(dim=(1, 2, 3), keepdim=True)
        flat = mean + (src - mean) * c
        out[rows] = flat.round().clamp(0, 255).to(x.dtype) if x.dtype == torch.uint8 else flat
    rows = kinds == CORRUPTIONS.index("crop")
    if rows.any():
        n = int(rows.sum())
        lo, hi = CROP_SIDE
        side = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
        # Centre of the crop in [-1, 1] grid coordinates, anywhere the crop stays on the film.
        centre = (torch.rand(n, 2, generator=gen, dtype=torch.float64) * 2 - 1) * (1 - side)[
            :, None
        ]
        zero = torch.zeros(n, dtype=torch.float64)
        theta = torch.stack(
            [
                torch.stack([side, zero, centre[:, 0]], 1),
                torch.stack([zero, side, centre[:, 1]], 1),
            ],
            1,
        ).float()
        src = x[rows].float()
        grid = F.affine_grid(theta, list(src.shape), align_corners=False)
        crop = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
        out[rows] = crop.round().clamp(0, 255).to(x.dtype) if x.dtype == torch.uint8 else crop
    return out, [CORRUPTIONS[int(k)] for k in kinds]


@dataclass
class OodDetector:
    """A fitted detector: `score(features, logits)` gives one number per image; above
    `threshold` the image is outside what the model was trained on.

    `rates` holds the measured flag rates: val (by construction about 1 - quantile) and test
    (the honest estimate of the false-flag rate on in-distribution images), set by the caller
    that has a test split.
    """

    method: str
    quantile: float
    threshold: float
    gaussians: list[_Gaussian]
    knn_bank: np.ndarray | None  # (M, D) L2-normalised penultimate training features
    knn_k: int
    standardise: dict[str, tuple[float, float]]
    rates: dict[str, Any] = field(default_factory=dict)
    head: _CorruptionHead | None = None  # only for the "corruption" component
    scaling: str = "std"  # how `standardise` was fitted (informational; applied the same way)
    pixel_gaussian: _Gaussian | None = None  # only for the "pixels" component

    @property
    def components(self) -> tuple[str, ...]:
        """The method's components, e.g. ("maha-layers", "knn")."""
        return parse_method(self.method)

    def component_scores(
        self,
        feats: Sequence[np.ndarray],
        logits: np.ndarray,
        pixels: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Raw (unstandardised) score per component; "maha-layers" gives one column per stage.
        `pixels` (pixel_stats of the model's input) is needed only by the "pixels" component."""
        raw: dict[str, Any] = {}
        parts = self.components
        if "maha" in parts:
            raw["maha"] = self.gaussians[-1].distance(feats[-1])
        if "maha-layers" in parts:
            raw["maha-layers"] = np.stack(
                [g.distance(f) for g, f in zip(self.gaussians, feats, strict=True)], axis=1
            )
        if "knn" in parts:
            assert self.knn_bank is not None
            raw["knn"] = _knn_distance(_l2(feats[-1]), self.knn_bank, self.knn_k)
        if "energy" in parts:
            raw["energy"] = -_logsumexp(logits)
        if "corruption" in parts:
            assert self.head is not None
            raw["corruption"] = self.head.logit(feats)
        if "pixels" in parts:
            if pixels is None or self.pixel_gaussian is None:
                raise ValueError("the pixels component needs the model's input images")
            raw["pixels"] = self.pixel_gaussian.distance(pixels)
        return raw

    @property
    def needs_pixels(self) -> bool:
        """Whether score() must be given pixel_stats of the model's input."""
        return "pixels" in self.components

    def score(
        self, feats: Sequence[np.ndarray], logits: np.ndarray, pixels: np.ndarray | None = None
    ) -> np.ndarray:
        """One score per image: the largest standardised component (float64, (N,))."""
        columns: list[np.ndarray] = []
        for name, value in self.component_scores(feats, logits, pixels).items():
            value = np.asarray(value, dtype=np.float64)
            if value.ndim == 1:
                value = value[:, None]
            for j in range(value.shape[1]):
                centre, scale = self.standardise[f"{name}:{j}"]
                columns.append((value[:, j] - centre) / scale)
        return np.max(np.stack(columns, axis=1), axis=1)

    def score_model(
        self,
        model: nn.Module,
        x: torch.Tensor,
        *,
        prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> np.ndarray:
        """Score a batch through `model` (one forward pass; `prepare` as in extract_features)."""
        feats, logits = extract_features(model, x, prepare=prepare)
        pixels = pixel_features(x, prepare=prepare) if self.needs_pixels else None
        return self.score(feats, logits, pixels)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts for metrics and a model card: method, quantile, threshold, rates."""
        return to_plain(
            {
                "method": self.method,
                "quantile": self.quantile,
                "threshold": self.threshold,
                **self.rates,
            }
        )

    def to_payload(self) -> dict[str, Any]:
        """Plain lists and tensors only, for a weights_only artifact ("head" only when there
        is one, so a detector without it writes the same bytes as before heads existed)."""
        payload = {
            "method": self.method,
            "quantile": float(self.quantile),
            "threshold": float(self.threshold),
            "means": [torch.from_numpy(g.means.astype(np.float64)) for g in self.gaussians],
            "precisions": [
                torch.from_numpy(g.precision.astype(np.float64)) for g in self.gaussians
            ],
            "knn_bank": None
            if self.knn_bank is None
            else torch.from_numpy(self.knn_bank.astype(np.float32)),
            "knn_k": int(self.knn_k),
            "standardise": {k: [float(m), float(s)] for k, (m, s) in self.standardise.items()},
            "rates": to_plain(self.rates),
        }
        if self.head is not None:
            payload["head"] = self.head.to_payload()
        if self.pixel_gaussian is not None:
            payload["pixel_means"] = torch.from_numpy(self.pixel_gaussian.means.astype(np.float64))
            payload["pixel_precision"] = torch.from_numpy(
                self.pixel_gaussian.precision.astype(np.float64)
            )
        if self.scaling != "std":
            payload["scaling"] = self.scaling
        return payload

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> OodDetector:
        """Rebuild from `to_payload()` output; raises ValueError on a malformed detector."""
        try:
            parts = parse_method(str(data["method"]))
            head = data.get("head")
            if "corruption" in parts and head is None:
                raise ValueError("the corruption component has no head")
            if "pixels" in parts and "pixel_means" not in data:
                raise ValueError("the pixels component has no statistics")
            pixel_gaussian = (
                _Gaussian(
                    means=data["pixel_means"].double().numpy(),
                    precision=data["pixel_precision"].double().numpy(),
                )
                if "pixel_means" in data
                else None
            )
            gaussians = [
                _Gaussian(means=m.double().numpy(), precision=p.double().numpy())
                for m, p in zip(data["means"], data["precisions"], strict=True)
            ]
            bank = data.get("knn_bank")
            return cls(
                method=str(data["method"]),
                quantile=float(data["quantile"]),
                threshold=float(data["threshold"]),
                gaussians=gaussians,
                knn_bank=None if bank is None else bank.float().numpy().astype(np.float64),
                knn_k=int(data["knn_k"]),
                standardise={k: (float(v[0]), float(v[1])) for k, v in data["standardise"].items()},
                rates=dict(data.get("rates") or {}),
                head=None if head is None else _CorruptionHead.from_payload(head),
                scaling=str(data.get("scaling", "std")),
                pixel_gaussian=pixel_gaussian,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"the artifact's OOD detector is malformed: {exc}") from None


def fit_detector(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: np.ndarray,
    x_val: torch.Tensor,
    *,
    num_classes: int,
    method: str = DEFAULT_METHOD,
    quantile: float = DEFAULT_QUANTILE,
    holdout: float = DEFAULT_HOLDOUT,
    scaling: str = DEFAULT_SCALING,
    seed: int = 0,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> OodDetector:
    """Fit on the model's features of the training images (and, for "corruption", of synthetic
    corruptions of them) and set the threshold at `quantile` of the validation images' scores;
    with `holdout` > 0 that fraction of validation only sets the threshold and the rest only
    scales (`scaling` in SCALINGS; `prepare` as in extract_features)."""
    parts = parse_method(method)
    if not 0.5 <= quantile < 1.0:
        raise ValueError("the OOD quantile must be in [0.5, 1)")
    if not 0.0 <= holdout < 1.0:
        raise ValueError("the OOD threshold holdout must be in [0, 1)")
    if scaling not in SCALINGS:
        raise ValueError(f"the OOD scaling must be one of {', '.join(SCALINGS)}")
    train_feats, _ = extract_features(model, x_train, prepare=prepare)
    y_train = np.asarray(y_train)
    gaussians = [_Gaussian.fit(f, y_train, num_classes) for f in train_feats]
    bank = _l2(train_feats[-1])
    if len(bank) > KNN_MAX_BANK:
        # A stratified-enough random subset keeps the artifact small (2048 x D floats).
        rng = np.random.default_rng(seed)
        bank = bank[np.sort(rng.choice(len(bank), KNN_MAX_BANK, replace=False))]
    detector = OodDetector(
        method=method,
        quantile=quantile,
        threshold=0.0,
        gaussians=gaussians,
        knn_bank=bank,
        knn_k=min(KNN_K, len(bank)),
        standardise={},
        scaling=scaling,
    )
    if "corruption" in parts:
        rng = np.random.default_rng(seed)
        rows = np.arange(len(x_train))
        if len(rows) > HEAD_MAX_IMAGES:
            rows = np.sort(rng.choice(len(rows), HEAD_MAX_IMAGES, replace=False))
        corrupt, _kinds = corrupt_images(x_train[torch.from_numpy(rows)], seed=seed)
        corrupt_feats, _ = extract_features(model, corrupt, prepare=prepare)
        detector.head = _CorruptionHead.fit([f[rows] for f in train_feats], corrupt_feats)
    if "pixels" in parts:
        detector.pixel_gaussian = _Gaussian.fit(
            pixel_features(x_train, prepare=prepare), np.zeros(len(x_train), dtype=int), 1
        )
    val_feats, val_logits = extract_features(model, x_val, prepare=prepare)
    val_pixels = pixel_features(x_val, prepare=prepare) if "pixels" in parts else None
    fit_rows = threshold_rows = np.arange(len(val_logits))
    if holdout > 0:
        order = np.random.default_rng(seed).permutation(len(val_logits))
        cut = len(order) - max(1, round(holdout * len(order)))
        if cut < 2:
            raise ValueError("too few validation images to hold some out for the threshold")
        fit_rows, threshold_rows = np.sort(order[:cut]), np.sort(order[cut:])
    fit_feats = [f[fit_rows] for f in val_feats]
    fit_pixels = None if val_pixels is None else val_pixels[fit_rows]
    for name, value in detector.component_scores(
        fit_feats, val_logits[fit_rows], fit_pixels
    ).items():
        value = np.asarray(value, dtype=np.float64)
        if value.ndim == 1:
            value = value[:, None]
        for j in range(value.shape[1]):
            detector.standardise[f"{name}:{j}"] = _scale(value[:, j], scaling)
    if "knn" not in detector.components:
        detector.knn_bank = None  # nothing reads it, so the artifact does not carry it
    val_scores = detector.score(val_feats, val_logits, val_pixels)
    detector.threshold = float(np.quantile(val_scores[threshold_rows], quantile))
    detector.rates = {"val_flag_rate": float((val_scores > detector.threshold).mean())}
    if holdout > 0:
        held = val_scores[threshold_rows]
        detector.rates["val_holdout_images"] = int(len(held))
        detector.rates["val_holdout_flag_rate"] = float((held > detector.threshold).mean())
    return detector


def _scale(values: np.ndarray, scaling: str) -> tuple[float, float]:
    if scaling == "tail":
        centre = float(np.median(values))
        spread = float(np.quantile(values, TAIL_QUANTILE)) - centre
    else:
        centre, spread = float(values.mean()), float(values.std())
    return centre, spread if spread > 1e-12 else 1.0


def _l2(features: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norm, 1e-12)


def _knn_distance(query: np.ndarray, bank: np.ndarray, k: int) -> np.ndarray:
    out = np.empty(len(query))
    for start in range(0, len(query), 1024):
        q = query[start : start + 1024]
        # For unit vectors, squared distance = 2 - 2 cos.
        d2 = np.maximum(2.0 - 2.0 * (q @ bank.T), 0.0)
        out[start : start + len(q)] = np.sqrt(np.partition(d2, k - 1, axis=1)[:, k - 1])
    return out


def _logsumexp(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))[:, 0]
