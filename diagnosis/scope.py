"""Applicability of a model version to a stored scan: the input contract's metadata gate on
the stored (de-identified) header, then the learned out-of-distribution score of the model's
answer. The upload job, the clinician's override and routing read the same rules as
`diagnosis.applicability` (the bench and `manage.py scan_classify`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from diagnosis.applicability import NO_DETECTOR, ood_reason, scan_words
from diagnosis.imaging import ScanInfo
from diagnosis.imaging.contract import GateResult, InputContract, contract_check
from diagnosis.models import Prediction, Scan

__all__ = [
    "NO_DETECTOR",
    "GatedScans",
    "ScopeAnswer",
    "bundle_contract",
    "contract_fit",
    "scan_gate",
    "scan_header",
    "scans_gate",
    "series_scope",
]


@dataclass(frozen=True)
class ScopeAnswer:
    """What the applicability checks said about one scan for one model version."""

    scope: str
    check: str = ""
    reason: str = ""
    ood_score: float | None = None
    ood_threshold: float | None = None

    @property
    def scored(self) -> bool:
        return self.scope != Prediction.Scope.OUT_OF_SCOPE


def bundle_contract(bundle: Any) -> InputContract | None:
    """The input contract a loaded imaging model carries (None: trained before contracts, so
    the metadata gate lets every scan through)."""
    data = getattr(bundle, "contract", None)
    return InputContract.from_dict(data) if data else None


def scan_header(scan: Scan) -> Dataset | None:
    """The stored de-identified DICOM header of a scan without its pixels (None for PNG/JPEG).
    De-identification keeps Modality, SOP class, Image Type, Body Part Examined, View Position
    and the pixel description (diagnosis/imaging/deid.py), which is all the gate reads."""
    if scan.kind != Scan.Kind.DICOM:
        return None
    with scan.file.open("rb") as handle:
        return pydicom.dcmread(handle, stop_before_pixels=True, force=True)


def _scan_info(scan: Scan, header: Dataset | None) -> ScanInfo:
    photometric = str((scan.info or {}).get("photometric") or "")
    samples = 3 if scan.is_color else 1
    sop_class = None
    if header is not None:
        photometric = str(header.get("PhotometricInterpretation", photometric) or "")
        samples = int(header.get("SamplesPerPixel", samples) or samples)
        sop_class = str(header.get("SOPClassUID", "") or "") or None
    return ScanInfo(
        kind=scan.kind,  # type: ignore[arg-type]
        modality=scan.modality or None,
        rows=scan.rows,
        cols=scan.cols,
        frames=scan.frames,
        samples_per_pixel=samples,
        photometric_interpretation=photometric,
        bits_allocated=0,
        bits_stored=int((scan.info or {}).get("bits_stored") or 0),
        transfer_syntax_uid=None,
        transfer_syntax_name=scan.transfer_syntax or None,
        size_bytes=0,
        lossy=(scan.info or {}).get("lossy"),
        sop_class_uid=sop_class,
        sop_class_name=(scan.info or {}).get("sop_class"),
    )


def scan_gate(*, scan: Scan, contract: InputContract | None) -> GateResult:
    """The metadata gate on a stored scan: fits when the version states no contract."""
    if contract is None:
        return GateResult(fits=True)
    header = scan_header(scan)
    return contract_check(contract, info=_scan_info(scan, header), dataset=header)


def contract_fit(*, info: ScanInfo, dataset: Dataset | None, contract: InputContract) -> int:
    """How well a header fits a contract, for routing: -1 when the gate refuses it, else the
    number of the contract's stated terms (modality, SOP class, body part, view) the header
    positively matches, so a chest CR goes to the chest model rather than to one that checks
    only size and channels."""
    if not contract_check(contract, info=info, dataset=dataset).fits:
        return -1
    if dataset is None:
        return 0

    def stated(keyword: str) -> str:
        return str(dataset.get(keyword, "") or "").strip().upper()

    from diagnosis.imaging.contract import BODY_PART_SYNONYMS

    body_part = stated("BodyPartExamined")
    return sum(
        (
            bool(contract.modalities) and stated("Modality") in contract.modalities,
            bool(contract.sop_classes) and stated("SOPClassUID") in contract.sop_classes,
            bool(contract.body_parts)
            and BODY_PART_SYNONYMS.get(body_part, body_part) in contract.body_parts,
            bool(contract.views) and stated("ViewPosition") in contract.views,
        )
    )


def series_scope(series: Any, bundle: Any, *, scan: Scan | None = None) -> ScopeAnswer:
    """The learned score's answer for one scan's series prediction: out of scope above the
    threshold (with the reason a clinician reads), in scope at or under it, unchecked when
    the version has no detector."""
    if series.in_scope is None or getattr(bundle, "ood", None) is None:
        return ScopeAnswer(scope=Prediction.Scope.UNCHECKED)
    if series.in_scope:
        return ScopeAnswer(
            scope=Prediction.Scope.IN_SCOPE,
            ood_score=series.ood_score,
            ood_threshold=series.ood_threshold,
        )
    return ScopeAnswer(
        scope=Prediction.Scope.OUT_OF_SCOPE,
        check=Prediction.ScopeCheck.OOD,
        reason=ood_reason(
            series.ood_score,
            series.ood_threshold,
            bundle,
            what=scan_words(scan.kind, scan.modality) if scan is not None else "this image",
        ),
        ood_score=series.ood_score,
        ood_threshold=series.ood_threshold,
    )


def gate_scope(gate: GateResult) -> ScopeAnswer:
    """The gate's refusal as a stored answer."""
    return ScopeAnswer(
        scope=Prediction.Scope.OUT_OF_SCOPE, check=Prediction.ScopeCheck.GATE, reason=gate.reason
    )


@dataclass
class GatedScans:
    """Scans through the contract's metadata gate: the refused ones with their answers, and
    the frames of the rest as one batch, each scan's frames at ``images[start:stop]``."""

    refused: list[tuple[Scan, ScopeAnswer]]
    images: list[np.ndarray]
    spans: list[tuple[Scan, int, int]]


def scans_gate(*, scans: list[Scan], contract: InputContract | None) -> GatedScans:
    """Gate each scan on its stored header; read the model images of those that fit (a
    refused scan's pixels are never read)."""
    from diagnosis.frames import model_images

    gated = GatedScans(refused=[], images=[], spans=[])
    for scan in scans:
        gate = scan_gate(scan=scan, contract=contract)
        if not gate.fits:
            gated.refused.append((scan, gate_scope(gate)))
            continue
        with scan.display.open("rb") as handle, np.load(handle) as npz:
            frames = model_images(npz)
        gated.spans.append((scan, len(gated.images), len(gated.images) + len(frames)))
        gated.images.extend(frames)
    return gated
