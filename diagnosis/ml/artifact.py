"""Model artifacts: one file holding a plain dict (no pickled classes), plus its in-memory bundle.

The file is `torch.save` of plain types and tensors only, so `torch.load(weights_only=True)` can
read it without executing code from the file.

Two optional entries were added without a format bump (older readers ignore unknown keys, and
older artifacts simply lack them): "ood", the out-of-distribution detector fitted at training
time (diagnosis.ml.ood), and "contract", the input contract of diagnosis.imaging.contract as a
plain dict. An artifact without "ood" loads with `ood=None`: the model has no detector and every
image it scores is reported as unchecked, never as in scope.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diagnosis.ml.data import Normalisation
from diagnosis.ml.models import build_model
from diagnosis.ml.ood import OodDetector

FORMAT = "medai.diagnosis.image-classifier"
FORMAT_VERSION = 1
_REQUIRED = (
    "format",
    "format_version",
    "arch",
    "arch_kwargs",
    "config",
    "class_names",
    "input_size",
    "in_channels",
    "normalisation",
    "temperature",
    "threshold",
    "state_dict",
)


@dataclass
class ModelBundle:
    """A ready-to-run classifier in eval mode with everything needed to prepare inputs and
    calibrate outputs."""

    model: nn.Module
    arch: str
    arch_kwargs: dict[str, Any]
    class_names: tuple[str, ...]
    input_size: tuple[int, int]
    in_channels: int
    normalisation: Normalisation
    temperature: float
    threshold: float | None
    config: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None
    ood: OodDetector | None = None
    contract: dict[str, Any] | None = None

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> ModelBundle:
        """Move the model to `device` in place and return self."""
        self.model.to(torch.device(device))
        return self

    def to_payload(self) -> dict[str, Any]:
        """Return the plain dict stored in an artifact file (state dict copied to CPU)."""
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "arch": self.arch,
            "arch_kwargs": dict(self.arch_kwargs),
            "config": dict(self.config),
            "class_names": list(self.class_names),
            "input_size": [int(self.input_size[0]), int(self.input_size[1])],
            "in_channels": int(self.in_channels),
            "normalisation": self.normalisation.to_dict(),
            "temperature": float(self.temperature),
            "threshold": None if self.threshold is None else float(self.threshold),
        }
        if self.contract is not None:
            meta["contract"] = dict(self.contract)
        ood_tensors: dict[str, Any] = {}
        if self.ood is not None:
            ood = self.ood.to_payload()
            tensor_keys = (
                "means",
                "precisions",
                "knn_bank",
                "head",
                "pixel_means",
                "pixel_precision",
            )
            ood_tensors = {k: ood.pop(k) for k in tensor_keys if k in ood}
            meta["ood"] = ood
        state = self.model.state_dict()
        # Pickle output depends on which equal strings are the same object (memo references), so
        # everything but the tensors goes through JSON: equal content then gives equal bytes, and
        # a loaded-and-resaved artifact keeps its sha256.
        payload: dict[str, Any] = json.loads(json.dumps(meta, sort_keys=True))
        keys: list[str] = json.loads(json.dumps(list(state)))
        payload["state_dict"] = {
            k: v.detach().to("cpu").clone() for k, v in zip(keys, state.values(), strict=True)
        }
        if self.ood is not None:
            payload["ood"].update(ood_tensors)
        return payload


def bundle_from_state(
    *,
    arch: str,
    arch_kwargs: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    class_names: tuple[str, ...] | list[str],
    input_size: tuple[int, int] | list[int],
    in_channels: int,
    normalisation: Normalisation,
    temperature: float,
    threshold: float | None,
    config: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    sha256: str | None = None,
    ood: OodDetector | None = None,
    contract: dict[str, Any] | None = None,
) -> ModelBundle:
    """Rebuild the model by name, load `state_dict` strictly, and return an eval-mode bundle."""
    model = build_model(
        arch, in_channels=int(in_channels), num_classes=len(class_names), **arch_kwargs
    )
    model.load_state_dict(state_dict, strict=True)
    model.to(torch.device(device)).eval()
    return ModelBundle(
        model=model,
        arch=arch,
        arch_kwargs=dict(arch_kwargs),
        class_names=tuple(str(c) for c in class_names),
        input_size=(int(input_size[0]), int(input_size[1])),
        in_channels=int(in_channels),
        normalisation=normalisation,
        temperature=float(temperature),
        threshold=None if threshold is None else float(threshold),
        config=dict(config or {}),
        sha256=sha256,
        ood=ood,
        contract=None if contract is None else dict(contract),
    )


def artifact_bytes(bundle: ModelBundle) -> bytes:
    """Return the artifact file content for `bundle` (e.g. to store in a Django FileField)."""
    buffer = io.BytesIO()
    # Serialising to memory keeps the zip's internal record names independent of any file name,
    # so the same bundle always gives the same bytes and the same sha256.
    torch.save(bundle.to_payload(), buffer)
    return buffer.getvalue()


def save_artifact(bundle: ModelBundle, path: str | Path) -> str:
    """Write the bundle to `path` atomically as one file and return its sha256 (hex)."""
    data = artifact_bytes(bundle)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write-then-rename, so a worker never loads a half-written artifact.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        # mkstemp creates 0600; web and worker processes may run as different users.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sha = hashlib.sha256(data).hexdigest()
    bundle.sha256 = sha
    return sha


def file_sha256(path: str | Path) -> str:
    """Return the sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_artifact(
    source: str | Path | bytes,
    *,
    device: str | torch.device = "cpu",
    expected_sha256: str | None = None,
) -> ModelBundle:
    """Load an artifact (a path, or its bytes as the registry's loader reads them) with
    `weights_only=True` and rebuild its model in eval mode on `device`.

    Raises ValueError when the sha256 differs from `expected_sha256` (e.g. the registry's) or the
    content is not an artifact of this format.
    """
    if isinstance(source, bytes | bytearray):
        data, path = bytes(source), "<bytes>"
    else:
        data, path = Path(source).read_bytes(), str(source)
    sha = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and sha != expected_sha256.lower():
        raise ValueError(f"{path}: sha256 {sha} does not match expected {expected_sha256}")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise ValueError(f"{path}: not a loadable model artifact ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} artifact")
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"{path}: artifact is missing {', '.join(missing)}")
    if payload["format_version"] > FORMAT_VERSION:
        raise ValueError(
            f"{path}: artifact format version {payload['format_version']} is newer than "
            f"supported ({FORMAT_VERSION})"
        )
    ood = payload.get("ood")
    contract = payload.get("contract")
    if contract is not None and not isinstance(contract, dict):
        raise ValueError(f"{path}: the artifact's input contract is malformed")
    return bundle_from_state(
        arch=payload["arch"],
        arch_kwargs=payload["arch_kwargs"],
        state_dict=payload["state_dict"],
        class_names=payload["class_names"],
        input_size=payload["input_size"],
        in_channels=payload["in_channels"],
        normalisation=Normalisation.from_dict(payload["normalisation"]),
        temperature=payload["temperature"],
        threshold=payload["threshold"],
        config=payload["config"],
        device=device,
        sha256=sha,
        ood=None if ood is None else OodDetector.from_payload(ood),
        contract=contract,
    )
