"""A DICOM Comprehensive SR for one imaging prediction, built with pydicom from plain inputs.

The document (SOP Class 1.2.840.10008.5.1.4.1.1.88.33) files in the study the caller names and
says only what the model said and what a clinician did with it. Its content tree has the shape
of TID 1500 (Measurement Report) but is MedAI's own template, so no Content Template Sequence
claims DCMR conformance:

    CONTAINER (126000, DCM, "Imaging Measurement Report")                       [root]
      HAS CONCEPT MOD  CODE (121049, DCM, "Language of Content Item and Descendants")
                            = (en, RFC5646, "English")
      HAS OBS CONTEXT  CODE (121005, DCM, "Observer Type") = (121007, DCM, "Device")
      HAS OBS CONTEXT  UIDREF (121012, DCM, "Device Observer UID")     (from the artifact sha256)
      HAS OBS CONTEXT  TEXT (121013, DCM, "Device Observer Name")       "<model> v<version>"
      HAS OBS CONTEXT  TEXT (121014, DCM, "Device Observer Manufacturer") "MedAI"
      HAS OBS CONTEXT  TEXT (121015, DCM, "Device Observer Model Name")   "<model>"
      CONTAINS CONTAINER (111028, DCM, "Image Library")               [when there are sources]
        CONTAINS IMAGE (260753009, SCT, "Source")                 one per source SOP instance
      CONTAINS CONTAINER (126010, DCM, "Imaging Measurements")
        CONTAINS CONTAINER (125007, DCM, "Measurement Group")
          CONTAINS TEXT (112039, DCM, "Tracking Identifier")          "prediction <id>"
          CONTAINS TEXT (111001, DCM, "Algorithm Name")                "<model>"
          CONTAINS TEXT (111003, DCM, "Algorithm Version")             "<version>"
          CONTAINS TEXT (SHA256, 99MEDAI, "Model artifact SHA-256")    "<64 hex digits>"
          CONTAINS CODE (SCOPE, 99MEDAI, "Model scope assessment")
                        = (IN-SCOPE | OUT-OF-SCOPE | SCOPE-UNCHECKED, 99MEDAI, ...)
            HAS PROPERTIES TEXT (SCOPE-REASON, 99MEDAI, "Reason outside the model's scope")
            HAS PROPERTIES CODE (SCOPE-CHECK, 99MEDAI, "Scope check method")
                                = (GATE | OOD, 99MEDAI, ...)
            HAS PROPERTIES TEXT (OVERRIDE, 99MEDAI, "Scored at a clinician's request")
          -- only when the model gave probabilities (in scope, unchecked, or scored anyway):
          CONTAINS CODE (121071, DCM, "Finding") = the predicted class
            INFERRED FROM IMAGE (260753009, SCT, "Source")            one per source instance
            INFERRED FROM IMAGE (HEATMAP, 99MEDAI, "Grad-CAM heat-map")  the Secondary Capture
          CONTAINS NUM (CLASS-PROB, 99MEDAI, "Class probability")  per class, UCUM "1"
            HAS CONCEPT MOD CODE (CLASS, 99MEDAI, "Class") = the class
          CONTAINS NUM (THRESHOLD, 99MEDAI, "Decision threshold"), UCUM "1"   or
          CONTAINS TEXT (DECISION-RULE, 99MEDAI, "Decision rule") "highest class probability"
          CONTAINS NUM (UNCERTAINTY, 99MEDAI, "Normalised predictive entropy"), UCUM "1"
          -- always:
          CONTAINS CODE (REVIEW, 99MEDAI, "Clinician review")
                        = (ACCEPTED | CORRECTED | NOT-REVIEWED, 99MEDAI, ...)
            HAS PROPERTIES CODE (REVIEW-LABEL, 99MEDAI, "Clinician's label") = the class
            HAS PROPERTIES CODE (REVIEWER-ROLE, 99MEDAI, "Reviewer role")
                                = (CLINICIAN, 99MEDAI, "Clinician")
            HAS PROPERTIES DATETIME (REVIEW-TIME, 99MEDAI, "Review date and time")

Classes are coded in SNOMED CT where MedAI knows the concept (CLASS_CODES), otherwise in the
private scheme 99MEDAI with the class name as meaning. The reviewer is named by role only.

Verification Flag stays UNVERIFIED: DICOM verification needs the verifier's name, and a
clinician's review is reported in the content tree instead. An answer outside the model's
scope carries the reason and no finding, probabilities, threshold or uncertainty.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.coding import Code
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

COMPREHENSIVE_SR = UID("1.2.840.10008.5.1.4.1.1.88.33")
PRIVATE_SCHEME = "99MEDAI"
MANUFACTURER = "MedAI"


def _medai(value: str, meaning: str) -> Code:
    return Code(value, PRIVATE_SCHEME, meaning)


# DICOM (PS3.16) and SNOMED CT concepts.
REPORT = Code("126000", "DCM", "Imaging Measurement Report")
LANGUAGE = Code("121049", "DCM", "Language of Content Item and Descendants")
ENGLISH = Code("en", "RFC5646", "English")
OBSERVER_TYPE = Code("121005", "DCM", "Observer Type")
DEVICE = Code("121007", "DCM", "Device")
DEVICE_UID = Code("121012", "DCM", "Device Observer UID")
DEVICE_NAME = Code("121013", "DCM", "Device Observer Name")
DEVICE_MANUFACTURER = Code("121014", "DCM", "Device Observer Manufacturer")
DEVICE_MODEL = Code("121015", "DCM", "Device Observer Model Name")
IMAGE_LIBRARY = Code("111028", "DCM", "Image Library")
MEASUREMENTS = Code("126010", "DCM", "Imaging Measurements")
GROUP = Code("125007", "DCM", "Measurement Group")
TRACKING_ID = Code("112039", "DCM", "Tracking Identifier")
ALGORITHM_NAME = Code("111001", "DCM", "Algorithm Name")
ALGORITHM_VERSION = Code("111003", "DCM", "Algorithm Version")
FINDING = Code("121071", "DCM", "Finding")
SOURCE = Code("260753009", "SCT", "Source")
UNITLESS = Code("1", "UCUM", "no units")

# MedAI's private concepts (coding scheme 99MEDAI).
SHA256 = _medai("SHA256", "Model artifact SHA-256")
SCOPE = _medai("SCOPE", "Model scope assessment")
SCOPE_VALUES = {
    "in_scope": _medai("IN-SCOPE", "Within the model's scope"),
    "out_of_scope": _medai("OUT-OF-SCOPE", "Outside the model's scope"),
    "unchecked": _medai("SCOPE-UNCHECKED", "Scope not checked"),
}
SCOPE_REASON = _medai("SCOPE-REASON", "Reason outside the model's scope")
SCOPE_CHECK = _medai("SCOPE-CHECK", "Scope check method")
SCOPE_CHECKS = {
    "gate": _medai("GATE", "Input contract (metadata)"),
    "ood": _medai("OOD", "Learned out-of-distribution score"),
}
OVERRIDE = _medai("OVERRIDE", "Scored at a clinician's request")
HEATMAP = _medai("HEATMAP", "Grad-CAM heat-map")
CLASS_PROBABILITY = _medai("CLASS-PROB", "Class probability")
CLASS = _medai("CLASS", "Class")
THRESHOLD = _medai("THRESHOLD", "Decision threshold")
DECISION_RULE = _medai("DECISION-RULE", "Decision rule")
UNCERTAINTY = _medai("UNCERTAINTY", "Normalised predictive entropy")
REVIEW = _medai("REVIEW", "Clinician review")
REVIEW_VALUES = {
    "accepted": _medai("ACCEPTED", "Accepted by a clinician"),
    "corrected": _medai("CORRECTED", "Corrected by a clinician"),
    "not_reviewed": _medai("NOT-REVIEWED", "Not reviewed"),
}
REVIEW_LABEL = _medai("REVIEW-LABEL", "Clinician's label")
REVIEWER_ROLE = _medai("REVIEWER-ROLE", "Reviewer role")
REVIEW_TIME = _medai("REVIEW-TIME", "Review date and time")

# Class names MedAI's models use that SNOMED CT names (lower-case name -> concept).
CLASS_CODES: dict[str, Code] = {
    "normal": Code("17621005", "SCT", "Normal"),
    "pneumonia": Code("233604007", "SCT", "Pneumonia"),
}


def class_code(name: str) -> Code:
    """The concept for a model's class: SNOMED CT when known, else 99MEDAI (name as meaning)."""
    known = CLASS_CODES.get(name.strip().lower())
    if known is not None:
        return known
    value = re.sub(r"[^A-Z0-9]+", "-", name.upper()).strip("-")[:16] or "UNNAMED"
    return _medai(value, name[:64] or "unnamed class")


def role_code(role: str) -> Code:
    """A MedAI role as a 99MEDAI concept (the reviewer is never named)."""
    value = re.sub(r"[^A-Z0-9]+", "-", role.upper()).strip("-")[:16] or "UNKNOWN"
    return _medai(value, role.replace("_", " ").capitalize()[:64])


@dataclass(frozen=True)
class InstanceRef:
    """A composite SOP instance and where it files."""

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str


@dataclass(frozen=True)
class StudyContext:
    """The study (and patient) the new objects file under, as the receiving archive knows it."""

    study_instance_uid: str
    patient_name: str
    patient_id: str
    study_date: str = ""
    study_time: str = ""
    study_id: str = ""
    accession_number: str = ""


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: str
    sha256: str
    device_uid: str


@dataclass(frozen=True)
class ReviewState:
    """``verdict``: accepted, corrected or not_reviewed; ``label`` the clinician's class."""

    verdict: str = "not_reviewed"
    label: str = ""
    reviewer_role: str = ""
    reviewed_at: datetime | None = None


@dataclass(frozen=True)
class PredictionFacts:
    """What the model said about one scan (probabilities empty when it gave none)."""

    tracking_id: str
    model: ModelIdentity
    scope: str  # in_scope | out_of_scope | unchecked
    class_names: Sequence[str]
    probabilities: dict[str, float] = field(default_factory=dict)
    predicted_class: str = ""
    threshold: float | None = None
    uncertainty: float | None = None
    scope_reason: str = ""
    scope_check: str = ""
    override_reason: str = ""
    review: ReviewState = field(default_factory=ReviewState)

    @property
    def scored(self) -> bool:
        return bool(self.probabilities) and bool(self.predicted_class)


@dataclass(frozen=True)
class NewObject:
    """UIDs and numbering of an object MedAI creates."""

    series_instance_uid: str
    sop_instance_uid: str
    series_number: int
    instance_number: int
    created_at: datetime


# --- content items ------------------------------------------------------------------------


def _code_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    return item


def _item(value_type: str, concept: Code | None, relationship: str | None) -> Dataset:
    item = Dataset()
    if relationship is not None:
        item.RelationshipType = relationship
    item.ValueType = value_type
    if concept is not None:
        item.ConceptNameCodeSequence = DicomSequence([_code_item(concept)])
    return item


def _children(item: Dataset, children: Sequence[Dataset]) -> Dataset:
    if children:
        item.ContentSequence = DicomSequence(list(children))
    return item


def _container(concept: Code, relationship: str | None, children: Sequence[Dataset]) -> Dataset:
    item = _item("CONTAINER", concept, relationship)
    item.ContinuityOfContent = "SEPARATE"
    return _children(item, children)


def _text(concept: Code, value: str, relationship: str = "CONTAINS") -> Dataset:
    item = _item("TEXT", concept, relationship)
    item.TextValue = value
    return item


def _code(
    concept: Code, value: Code, relationship: str = "CONTAINS", children: Sequence[Dataset] = ()
) -> Dataset:
    item = _item("CODE", concept, relationship)
    item.ConceptCodeSequence = DicomSequence([_code_item(value)])
    return _children(item, children)


def _num(concept: Code, value: float, children: Sequence[Dataset] = ()) -> Dataset:
    item = _item("NUM", concept, "CONTAINS")
    measured = Dataset()
    measured.NumericValue = f"{value:.6g}"[:16]
    measured.MeasurementUnitsCodeSequence = DicomSequence([_code_item(UNITLESS)])
    item.MeasuredValueSequence = DicomSequence([measured])
    return _children(item, children)


def _uidref(concept: Code, value: str, relationship: str) -> Dataset:
    item = _item("UIDREF", concept, relationship)
    item.UID = value
    return item


def _datetime(concept: Code, value: datetime, relationship: str) -> Dataset:
    item = _item("DATETIME", concept, relationship)
    item.DateTime = _dt(value)
    return item


def _image(concept: Code, ref: InstanceRef, relationship: str) -> Dataset:
    item = _item("IMAGE", concept, relationship)
    sop = Dataset()
    sop.ReferencedSOPClassUID = ref.sop_class_uid
    sop.ReferencedSOPInstanceUID = ref.sop_instance_uid
    item.ReferencedSOPSequence = DicomSequence([sop])
    return item


def _utc(value: datetime) -> datetime:
    """``value`` in UTC (a naive value is taken as UTC): every date and time MedAI writes is
    UTC, as the Timezone Offset From UTC (+0000) of the object says (PS3.3 C.12.1.1.8)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dt(value: datetime) -> str:
    """A DICOM DT in UTC, without an offset of its own (the object's offset applies)."""
    return _utc(value).strftime("%Y%m%d%H%M%S")


# --- the document -------------------------------------------------------------------------


def _observer(model: ModelIdentity) -> list[Dataset]:
    return [
        _code(OBSERVER_TYPE, DEVICE, "HAS OBS CONTEXT"),
        _uidref(DEVICE_UID, model.device_uid, "HAS OBS CONTEXT"),
        _text(DEVICE_NAME, f"{model.name} v{model.version}"[:64], "HAS OBS CONTEXT"),
        _text(DEVICE_MANUFACTURER, MANUFACTURER, "HAS OBS CONTEXT"),
        _text(DEVICE_MODEL, model.name[:64], "HAS OBS CONTEXT"),
    ]


def _scope_item(facts: PredictionFacts) -> Dataset:
    properties = []
    if facts.scope_reason:
        properties.append(_text(SCOPE_REASON, facts.scope_reason, "HAS PROPERTIES"))
    if facts.scope_check in SCOPE_CHECKS:
        properties.append(_code(SCOPE_CHECK, SCOPE_CHECKS[facts.scope_check], "HAS PROPERTIES"))
    if facts.override_reason:
        properties.append(_text(OVERRIDE, facts.override_reason, "HAS PROPERTIES"))
    return _code(SCOPE, SCOPE_VALUES[facts.scope], children=properties)


def _scored_items(
    facts: PredictionFacts, sources: Sequence[InstanceRef], heatmap: InstanceRef | None
) -> list[Dataset]:
    evidence = [_image(SOURCE, ref, "INFERRED FROM") for ref in sources]
    if heatmap is not None:
        evidence.append(_image(HEATMAP, heatmap, "INFERRED FROM"))
    items = [_code(FINDING, class_code(facts.predicted_class), children=evidence)]
    for name in facts.class_names:
        if name in facts.probabilities:
            modifier = _code(CLASS, class_code(name), "HAS CONCEPT MOD")
            items.append(_num(CLASS_PROBABILITY, facts.probabilities[name], [modifier]))
    if facts.threshold is not None:
        items.append(_num(THRESHOLD, facts.threshold))
    else:
        items.append(_text(DECISION_RULE, "highest class probability"))
    if facts.uncertainty is not None:
        items.append(_num(UNCERTAINTY, facts.uncertainty))
    return items


def _review_item(review: ReviewState) -> Dataset:
    properties = []
    if review.verdict != "not_reviewed":
        if review.label:
            properties.append(_code(REVIEW_LABEL, class_code(review.label), "HAS PROPERTIES"))
        if review.reviewer_role:
            properties.append(
                _code(REVIEWER_ROLE, role_code(review.reviewer_role), "HAS PROPERTIES")
            )
        if review.reviewed_at is not None:
            properties.append(_datetime(REVIEW_TIME, review.reviewed_at, "HAS PROPERTIES"))
    return _code(REVIEW, REVIEW_VALUES[review.verdict], children=properties)


def content_tree(
    facts: PredictionFacts, sources: Sequence[InstanceRef], heatmap: InstanceRef | None
) -> list[Dataset]:
    """The root's children (see the module docstring)."""
    group: list[Dataset] = [
        _text(TRACKING_ID, facts.tracking_id[:64]),
        _text(ALGORITHM_NAME, facts.model.name),
        _text(ALGORITHM_VERSION, facts.model.version),
        _text(SHA256, facts.model.sha256 or "unknown"),
        _scope_item(facts),
    ]
    if facts.scored:
        group.extend(_scored_items(facts, sources, heatmap))
    group.append(_review_item(facts.review))
    children = [_code(LANGUAGE, ENGLISH, "HAS CONCEPT MOD"), *_observer(facts.model)]
    if sources:
        library = [_image(SOURCE, ref, "CONTAINS") for ref in sources]
        children.append(_container(IMAGE_LIBRARY, "CONTAINS", library))
    measurements = _container(MEASUREMENTS, "CONTAINS", [_container(GROUP, "CONTAINS", group)])
    children.append(measurements)
    return children


def common_modules(
    ds: Dataset, *, study: StudyContext, new: NewObject, sop_class: str, modality: str
) -> None:
    """Patient, General Study, General Series, General Equipment and SOP Common attributes."""
    created = _utc(new.created_at)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = new.sop_instance_uid
    ds.InstanceCreationDate = created.strftime("%Y%m%d")
    ds.InstanceCreationTime = created.strftime("%H%M%S")
    ds.TimezoneOffsetFromUTC = "+0000"
    scheme = Dataset()
    scheme.CodingSchemeDesignator = PRIVATE_SCHEME
    scheme.CodingSchemeName = "MedAI private concepts (diagnosis/imaging/sr.py)"
    scheme.CodingSchemeResponsibleOrganization = MANUFACTURER
    ds.CodingSchemeIdentificationSequence = DicomSequence([scheme])
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = study.study_instance_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.ReferringPhysicianName = ""
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession_number
    ds.Modality = modality
    ds.SeriesInstanceUID = new.series_instance_uid
    ds.SeriesNumber = new.series_number
    ds.InstanceNumber = new.instance_number
    ds.Manufacturer = MANUFACTURER
    ds.ContentDate = created.strftime("%Y%m%d")
    ds.ContentTime = created.strftime("%H%M%S")


def file_meta(ds: Dataset) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta


def _evidence(refs: Sequence[InstanceRef]) -> DicomSequence:
    """Hierarchical SOP Instance Reference Macro (PS3.3 C.17-3), grouped by study and series."""
    studies: dict[str, dict[str, list[InstanceRef]]] = {}
    for ref in refs:
        studies.setdefault(ref.study_instance_uid, {}).setdefault(
            ref.series_instance_uid, []
        ).append(ref)
    out = []
    for study_uid, series in studies.items():
        study_item = Dataset()
        study_item.StudyInstanceUID = study_uid
        series_items = []
        for series_uid, instances in series.items():
            series_item = Dataset()
            series_item.SeriesInstanceUID = series_uid
            sops = []
            for ref in instances:
                sop = Dataset()
                sop.ReferencedSOPClassUID = ref.sop_class_uid
                sop.ReferencedSOPInstanceUID = ref.sop_instance_uid
                sops.append(sop)
            series_item.ReferencedSOPSequence = DicomSequence(sops)
            series_items.append(series_item)
        study_item.ReferencedSeriesSequence = DicomSequence(series_items)
        out.append(study_item)
    return DicomSequence(out)


def build_sr(
    *,
    facts: PredictionFacts,
    study: StudyContext,
    new: NewObject,
    sources: Sequence[InstanceRef] = (),
    heatmap: InstanceRef | None = None,
    predecessors: Sequence[InstanceRef] = (),
) -> Dataset:
    """The Comprehensive SR (with its file meta) reporting ``facts`` about ``sources``; the
    heat-map object, when given, is referenced as evidence of the finding, and earlier
    revisions of the report as its predecessors (0040,A360)."""
    ds = Dataset()
    common_modules(ds, study=study, new=new, sop_class=COMPREHENSIVE_SR, modality="SR")
    ds.SeriesDescription = "MedAI model result"
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence([])
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.PerformedProcedureCodeSequence = DicomSequence([])
    evidence = [*sources, *([heatmap] if heatmap is not None else [])]
    if evidence:
        ds.CurrentRequestedProcedureEvidenceSequence = _evidence(evidence)
    if predecessors:
        ds.PredecessorDocumentsSequence = _evidence(predecessors)
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = DicomSequence([_code_item(REPORT)])
    ds.ContinuityOfContent = "SEPARATE"
    ds.ContentSequence = DicomSequence(content_tree(facts, sources, heatmap))
    file_meta(ds)
    return ds
