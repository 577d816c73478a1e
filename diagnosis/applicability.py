"""One file through the product's imaging path, with the applicability checks: intake,
optional de-identification check, metadata gate, frames as the model reads them, the model and
its learned out-of-distribution score. No Django: the bench and `manage.py scan_classify` share
it, and the upload path reads the same intake, frames and model.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from diagnosis.frames import model_images, prepare_frames
from diagnosis.imaging import ScanRejected, deidentify, load_upload, scan_frames
from diagnosis.imaging.contract import GateResult, InputContract, contract_check
from diagnosis.ml.artifact import ModelBundle
from diagnosis.ml.predict import aggregate_series, predict

Outcome = Literal["rejected", "out_of_scope", "scored"]
# The pseudonym the de-identification dry run writes into the header (nothing is stored).
_CHECK_PSEUDONYM = "MEDAI-SCAN-CHECK"


@dataclass(frozen=True)
class Assessment:
    """What happened to one file: rejected by intake (message), out of the model's scope
    (reason, and the learned score when the gate let it through), or scored (probabilities,
    with the learned score that found it in scope; `ood_score` None = no detector)."""

    name: str
    outcome: Outcome
    message: str = ""
    kind: str = ""
    frames: int = 0
    gate: GateResult | None = None
    ood_score: float | None = None
    ood_threshold: float | None = None
    probabilities: dict[str, float] | None = None
    predicted_class: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values, for `scan_classify --json`."""
        return {
            "file": self.name,
            "outcome": self.outcome,
            "message": self.message,
            "kind": self.kind,
            "frames": self.frames,
            "gate_problems": list(self.gate.problems) if self.gate else [],
            "ood_score": self.ood_score,
            "ood_threshold": self.ood_threshold,
            "probabilities": self.probabilities,
            "predicted_class": self.predicted_class,
        }


@dataclass(frozen=True)
class Prepared:
    """An accepted file ready for the model: its frames as the model reads them and the gate's
    answer."""

    name: str
    kind: str
    images: list[np.ndarray]
    gate: GateResult
    modality: str | None = None


def scan_prepare(
    data: bytes,
    *,
    name: str,
    contract: InputContract | None,
    max_bytes: int,
    max_pixels: int,
    deid_key: bytes | None = None,
) -> Prepared:
    """Run intake (and, with `deid_key`, the upload's de-identification, whose result is
    discarded) and the metadata gate; raises ScanRejected exactly where an upload would."""
    loaded = load_upload(data, max_bytes=max_bytes, max_pixels=max_pixels)
    if deid_key is not None and loaded.info.kind == "dicom":
        deidentify(
            loaded, uid_key=deid_key, patient_name=_CHECK_PSEUDONYM, patient_id=_CHECK_PSEUDONYM
        )
    gate = (
        contract_check(contract, info=loaded.info, dataset=loaded.dataset)
        if contract is not None
        else GateResult(fits=True)
    )
    prepared = prepare_frames(scan_frames(loaded))
    with np.load(io.BytesIO(prepared.npz)) as npz:
        images = model_images(npz)
    return Prepared(
        name=name,
        kind=loaded.info.kind,
        images=images,
        gate=gate,
        modality=loaded.info.modality,
    )


def scan_assess(
    items: list[Prepared], *, bundle: ModelBundle, use_gate: bool = True
) -> list[Assessment]:
    """Score every prepared file the gate lets through in one batched pass and decide each
    file's outcome; a file the gate refuses is never shown a probability."""
    to_score = [p for p in items if p.gate.fits or not use_gate]
    flat = [image for p in to_score for image in p.images]
    per_frame = predict(bundle, flat) if flat else []
    results: dict[int, Assessment] = {}
    start = 0
    for item in to_score:
        stop = start + len(item.images)
        series = aggregate_series(bundle, per_frame[start:stop])
        start = stop
        if series.in_scope is False:
            results[id(item)] = Assessment(
                name=item.name,
                outcome="out_of_scope",
                message=ood_reason(
                    series.ood_score,
                    series.ood_threshold,
                    bundle,
                    what=scan_words(item.kind, item.modality),
                ),
                kind=item.kind,
                frames=len(item.images),
                gate=item.gate,
                ood_score=series.ood_score,
                ood_threshold=series.ood_threshold,
            )
            continue
        results[id(item)] = Assessment(
            name=item.name,
            outcome="scored",
            message="" if bundle.ood is not None else NO_DETECTOR,
            kind=item.kind,
            frames=len(item.images),
            gate=item.gate,
            ood_score=series.ood_score,
            ood_threshold=series.ood_threshold,
            probabilities={
                c: float(p) for c, p in zip(series.class_names, series.probabilities, strict=True)
            },
            predicted_class=series.predicted_class,
        )
    out = []
    for item in items:
        if id(item) in results:
            out.append(results[id(item)])
        else:
            out.append(
                Assessment(
                    name=item.name,
                    outcome="out_of_scope",
                    message=item.gate.reason,
                    kind=item.kind,
                    frames=len(item.images),
                    gate=item.gate,
                )
            )
    return out


NO_DETECTOR = (
    "this model version has no out-of-distribution detector (trained before detectors); "
    "whether the image resembles its training data was not checked"
)


def ood_reason(
    score: float | None,
    threshold: float | None,
    bundle: ModelBundle,
    *,
    what: str = "this image",
) -> str:
    """The clinician's reason for a learned-score refusal: what the model reads, what the
    scan is (``what``, e.g. "this PNG image"), and the score in one plain sentence."""
    from diagnosis.imaging.contract import contract_summary

    detector = bundle.ood
    above = f"{(1 - detector.quantile) * 100:.2g} %" if detector is not None else "few"
    reads = (
        contract_summary(bundle.contract) if bundle.contract else "images like its training data"
    )
    return (
        f"not scored: outside this model's scope. This model reads {reads}; {what} does "
        "not look like them. Its "
        f"out-of-distribution score (how far an image is from the model's training images) is "
        f"{score:.2f}, above {threshold:.2f}, a score only {above} of the model's own "
        "validation images reach"
    )


def scan_words(kind: str, modality: str | None) -> str:
    """ "this computed radiograph", "this PNG image": what a scan is, for a reason."""
    from diagnosis.imaging.contract import MODALITY_NAMES

    if kind == "dicom" and modality and modality.upper() in MODALITY_NAMES:
        return "this " + MODALITY_NAMES[modality.upper()].split(" ", 1)[1]
    if kind == "dicom":
        return f"this DICOM {modality + ' ' if modality else ''}image"
    return f"this {kind.upper()} image"


def files_under(path: Path) -> Iterator[Path]:
    """Every regular file at or under `path`, recursively, in a stable order (hidden files and
    folders skipped); symbolic links to files are followed, links to folders are not."""
    if path.is_file():
        yield path
        return
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir() and not child.is_symlink():
            yield from files_under(child)
        elif child.is_file():
            yield child


def scan_read(path: Path, *, max_bytes: int) -> bytes:
    """Read at most max_bytes + 1 bytes, so intake refuses an oversized file by its size
    without this reading all of it."""
    with path.open("rb") as handle:
        return handle.read(max_bytes + 1)


def safe_prepare(path: Path, **kwargs: Any) -> Prepared | Assessment:
    """scan_prepare on a file, with a refusal turned into a "rejected" Assessment."""
    try:
        data = scan_read(path, max_bytes=kwargs["max_bytes"])
        return scan_prepare(data, name=str(path), **kwargs)
    except ScanRejected as exc:
        return Assessment(name=str(path), outcome="rejected", message=exc.message)
    except OSError as exc:
        return Assessment(
            name=str(path), outcome="rejected", message=f"could not be read ({exc.strerror})"
        )
    except Exception as exc:  # noqa: BLE001 - a folder of unknown files must not stop a batch
        return Assessment(
            name=str(path),
            outcome="rejected",
            message=f"the intake failed on this file ({type(exc).__name__})",
        )


def paths_assess(
    paths: list[Path],
    *,
    bundle: ModelBundle,
    contract: InputContract | None,
    max_bytes: int,
    max_pixels: int,
    use_gate: bool = True,
    deid_key: bytes | None = None,
    batch_frames: int = 256,
) -> Iterator[Assessment]:
    """Every file at or under `paths`, in order, through intake, gate and model; files are
    scored in batches of about `batch_frames` frames so a large folder never sits in memory."""
    batch: list[Prepared | Assessment] = []

    def flush() -> Iterator[Assessment]:
        scored = iter(
            scan_assess(
                [b for b in batch if isinstance(b, Prepared)], bundle=bundle, use_gate=use_gate
            )
        )
        for entry in batch:
            yield entry if isinstance(entry, Assessment) else next(scored)

    for root in paths:
        for path in files_under(root):
            batch.append(
                safe_prepare(
                    path,
                    contract=contract,
                    max_bytes=max_bytes,
                    max_pixels=max_pixels,
                    deid_key=deid_key,
                )
            )
            if sum(len(b.images) for b in batch if isinstance(b, Prepared)) >= batch_frames:
                yield from flush()
                batch = []
    yield from flush()
