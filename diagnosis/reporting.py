"""Results leaving MedAI as DICOM: a stored prediction as a Comprehensive SR and its heat-map as
a Secondary Capture (the documents are built by diagnosis/imaging/sr.py and heatmap_capture.py).

Reads only. The objects file under the study MedAI stores (its de-identified UIDs and patient
pseudonym) unless the caller passes a ``DicomTarget``: the original UIDs, for a study sent back
to the archive that sent it. Object UIDs are keyed and deterministic, so downloading twice gives
the same object, and a review makes a new SR revision (a new SOP Instance UID).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pydicom
from django.db.models import QuerySet

from diagnosis.imaging.deid import pseudonymous_uid
from diagnosis.imaging.heatmap_capture import (
    SECONDARY_CAPTURE,
    build_secondary_capture,
    display_grey,
    overlay_rgb,
)
from diagnosis.imaging.sr import (
    COMPREHENSIVE_SR,
    InstanceRef,
    ModelIdentity,
    NewObject,
    PredictionFacts,
    ReviewState,
    StudyContext,
    build_sr,
)
from diagnosis.models import Prediction, Review, Scan, SourceInstance
from diagnosis.pacs.outbox import MODEL_REVISION, sr_revision
from diagnosis.selectors import scan_list
from diagnosis.services import deid_uid_key, patient_pseudonym
from medai_site.core.roles import Role, user_roles
from medai_site.registry.fhir import model_device_uid

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from pydicom.dataset import Dataset

    from medai_site.registry.models import ModelVersion

SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902


class NoHeatmap(Exception):
    """The prediction has no heat-map (outside the model's scope and not scored)."""


@dataclass(frozen=True)
class DicomTarget:
    """Where the objects file: the study and source instances as the receiving archive has
    them (the original UIDs when sending back to the PACS that sent the study)."""

    study: StudyContext
    sources: tuple[InstanceRef, ...]


def prediction_list(*, user: User) -> QuerySet[Prediction]:
    """Predictions of scans the user may see (their patients', not held)."""
    return Prediction.objects.filter(scan__in=scan_list(user=user)).select_related(
        "scan__patient", "model_version", "review__reviewer"
    )


def prediction_get(*, user: User, pk: int) -> Prediction:
    """One prediction of the user's patients; Prediction.DoesNotExist otherwise."""
    return prediction_list(user=user).get(pk=pk)


def _uid(*parts: object) -> str:
    return pseudonymous_uid("medai:" + ":".join(str(p) for p in parts), deid_uid_key())


def device_uid(version: ModelVersion) -> str:
    """The model version as a DICOM device observer (and FHIR Device identifier)."""
    return model_device_uid(version)


def stored_target(scan: Scan) -> DicomTarget:
    """The study and instances as MedAI stores them (de-identified UIDs, the pseudonym); a
    PNG or JPEG scan gets a study of its own and has no source instance to reference."""
    pseudonym = patient_pseudonym(scan.patient)
    if scan.kind != Scan.Kind.DICOM:
        study = StudyContext(
            study_instance_uid=_uid("scan-study", scan.pk, scan.sha256),
            patient_name=pseudonym,
            patient_id=pseudonym,
        )
        return DicomTarget(study=study, sources=())
    with scan.file.open("rb") as handle:
        ds = pydicom.dcmread(handle, stop_before_pixels=True)
    study = StudyContext(
        study_instance_uid=str(ds.StudyInstanceUID),
        patient_name=str(ds.get("PatientName", "") or pseudonym),
        patient_id=str(ds.get("PatientID", "") or pseudonym),
        study_date=str(ds.get("StudyDate", "") or ""),
        study_time=str(ds.get("StudyTime", "") or ""),
        study_id=str(ds.get("StudyID", "") or ""),
        accession_number=str(ds.get("AccessionNumber", "") or ""),
    )
    source = InstanceRef(
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        study_instance_uid=str(ds.StudyInstanceUID),
    )
    return DicomTarget(study=study, sources=(source,))


def original_target(scan: Scan, *, source: str) -> DicomTarget | None:
    """The study and instance as ``source`` sent them (the original UIDs, its patient and
    study identifiers), for objects sent back to that same source only; None when the scan
    did not come from ``source``."""
    original = SourceInstance.objects.filter(scan=scan, source=source).first()
    if original is None or not source:
        return None
    study = StudyContext(
        study_instance_uid=original.study_instance_uid,
        patient_name=original.patient_name,
        patient_id=original.patient_id,
        study_date=original.study_date,
        study_time=original.study_time,
        study_id=original.study_id,
        accession_number=original.accession_number,
    )
    ref = InstanceRef(
        sop_class_uid=original.sop_class_uid,
        sop_instance_uid=original.sop_instance_uid,
        series_instance_uid=original.series_instance_uid,
        study_instance_uid=original.study_instance_uid,
    )
    return DicomTarget(study=study, sources=(ref,))


def _review_state(prediction: Prediction) -> ReviewState:
    review: Review | None = getattr(prediction, "review", None)
    if review is None:
        return ReviewState()
    roles = user_roles(review.reviewer)
    # Only clinicians review (scan_review_view); the role is named, never the person.
    role = Role.CLINICIAN.value if Role.CLINICIAN in roles else (sorted(roles) or ["unknown"])[0]
    return ReviewState(
        verdict=review.verdict,
        label=review.label,
        reviewer_role=role,
        reviewed_at=review.reviewed_at,
    )


def prediction_facts(prediction: Prediction) -> PredictionFacts:
    """The prediction as plain facts (probabilities only when the model gave them)."""
    version = prediction.model_version
    scored = prediction.scored
    probabilities = prediction.probabilities if scored else {}
    return PredictionFacts(
        tracking_id=f"MedAI prediction {prediction.pk}",
        model=ModelIdentity(
            name=version.task,
            version=str(version.version),
            sha256=version.sha256,
            device_uid=device_uid(version),
        ),
        scope=prediction.scope,
        class_names=list(prediction.class_names),
        probabilities={str(k): float(v) for k, v in dict(probabilities or {}).items()},
        predicted_class=prediction.predicted_class if scored else "",
        threshold=prediction.threshold if scored else None,
        uncertainty=prediction.uncertainty if scored else None,
        # Once scored anyway, the reason loses its "not scored: " lead (it was scored).
        scope_reason=prediction.scope_why if prediction.overridden else prediction.scope_reason,
        scope_check=prediction.scope_check,
        override_reason=prediction.override_reason if prediction.overridden else "",
        review=_review_state(prediction),
    )


def _has_heatmap(prediction: Prediction) -> bool:
    return prediction.scored and bool(prediction.heatmaps)


def _sc_object(prediction: Prediction) -> NewObject:
    return NewObject(
        series_instance_uid=_uid("sc-series", prediction.pk),
        sop_instance_uid=_uid("sc", prediction.pk),
        series_number=SC_SERIES_NUMBER,
        instance_number=1,
        created_at=prediction.created_at,
    )


def _sc_ref(prediction: Prediction, target: DicomTarget) -> InstanceRef:
    new = _sc_object(prediction)
    return InstanceRef(
        sop_class_uid=str(SECONDARY_CAPTURE),
        sop_instance_uid=new.sop_instance_uid,
        series_instance_uid=new.series_instance_uid,
        study_instance_uid=target.study.study_instance_uid,
    )


def sr_sop_uid(prediction: Prediction, revision: str) -> str:
    """The SOP Instance UID of one revision of the prediction's SR (keyed, deterministic)."""
    return _uid("sr", prediction.pk, revision)


def prediction_sr(
    *,
    prediction: Prediction,
    target: DicomTarget | None = None,
    unreviewed: bool = False,
    predecessor: str | None = None,
) -> Dataset:
    """The prediction's Comprehensive SR in ``target`` (default: the stored study), as the
    model answered when ``unreviewed``. A reviewed revision names an earlier one as its
    predecessor: the revision ``predecessor`` (an ``sr_revision`` key), by default the
    model's answer."""
    target = target or stored_target(prediction.scan)
    facts = prediction_facts(prediction)
    if unreviewed:
        facts = replace(facts, review=ReviewState())
    review = facts.review
    revision = sr_revision(None if unreviewed else _review_of(prediction))
    created: datetime = review.reviewed_at or prediction.created_at
    series_uid = _uid("sr-series", prediction.pk)
    new = NewObject(
        series_instance_uid=series_uid,
        sop_instance_uid=sr_sop_uid(prediction, revision),
        series_number=SR_SERIES_NUMBER,
        # 1 as the model answered, 2 once a clinician has reviewed it.
        instance_number=1 if review.verdict == "not_reviewed" else 2,
        created_at=created,
    )
    earlier = predecessor if predecessor is not None else MODEL_REVISION
    predecessors: tuple[InstanceRef, ...] = ()
    if review.verdict != "not_reviewed" and earlier != revision:
        predecessors = (
            InstanceRef(
                sop_class_uid=str(COMPREHENSIVE_SR),
                sop_instance_uid=sr_sop_uid(prediction, earlier),
                series_instance_uid=series_uid,
                study_instance_uid=target.study.study_instance_uid,
            ),
        )
    heatmap = _sc_ref(prediction, target) if _has_heatmap(prediction) else None
    return build_sr(
        facts=facts,
        study=target.study,
        new=new,
        sources=target.sources,
        heatmap=heatmap,
        predecessors=predecessors,
    )


def _review_of(prediction: Prediction) -> Review | None:
    return getattr(prediction, "review", None)


def prediction_heatmap_capture(
    *, prediction: Prediction, target: DicomTarget | None = None
) -> Dataset:
    """The heat-map over the key frame as a Secondary Capture in ``target``; NoHeatmap when the
    prediction has none."""
    if not _has_heatmap(prediction):
        raise NoHeatmap("This answer is outside the model's scope and has no heat-map.")
    target = target or stored_target(prediction.scan)
    index = prediction.key_frame
    with prediction.heatmaps.open("rb") as handle, np.load(handle) as maps:
        key = f"heatmap_{index}"
        if key not in maps:
            raise NoHeatmap("The heat-map of this answer's key frame was not kept.")
        heat = maps[key].astype(np.float32)
    with prediction.scan.display.open("rb") as handle, np.load(handle) as npz:
        values = npz[f"values_{index}"].astype(np.float32)
        center, width = (float(v) for v in npz["windows"][index])
        invert = bool(npz["inverts"][index])
    unit = display_grey(values, center=center, width=width, invert=invert)
    version = prediction.model_version
    return build_secondary_capture(
        rgb=overlay_rgb(unit, heat),
        study=target.study,
        new=_sc_object(prediction),
        sources=target.sources,
        description=(
            f"Grad-CAM heat-map of {version.task} v{version.version} "
            f"(MedAI prediction {prediction.pk}, frame {index + 1}) over the display frame"
        ),
    )


def dicom_bytes(dataset: Dataset) -> bytes:
    """The object as a DICOM Part 10 file."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


__all__ = [
    "COMPREHENSIVE_SR",
    "DicomTarget",
    "NoHeatmap",
    "dicom_bytes",
    "original_target",
    "prediction_get",
    "prediction_heatmap_capture",
    "prediction_list",
    "prediction_sr",
    "sr_sop_uid",
]
