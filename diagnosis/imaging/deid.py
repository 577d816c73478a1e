"""De-identify a DICOM image, deny-by-default, per PS3.15 Annex E (Basic Profile).

Only attributes on an explicit keep-list (what is needed to display and classify the image)
are copied; everything else (names, IDs, dates, places, people, free text, private
attributes, overlays, unknown tags) is dropped. Instance UIDs are replaced by a keyed HMAC so
that files of one study/series stay linked without revealing the originals. The shipped
Table E.1-1 is used twice: at import, to prove the keep-list holds nothing the profile
removes, and after every run, to audit the output.
"""

from __future__ import annotations

import copy
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pydicom
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID

from diagnosis.imaging.burned_in import Verdict, burned_in_assessment
from diagnosis.imaging.dicom_intake import element_label, is_part10, looks_like_bare_dataset
from diagnosis.imaging.errors import RejectCode, ScanRejected
from diagnosis.imaging.ps3_15 import basic_profile
from diagnosis.imaging.scan import LoadedScan
from medai_ml.uids import UUID_ROOT, keyed_uid

# Copied unchanged wherever they occur (top level or inside a kept sequence). None of these
# is listed in PS3.15 Table E.1-1 (checked at import by _check_policy_against_profile).
KEEP: frozenset[str] = frozenset(
    {
        # SOP Common (PS3.3 C.12.1) and General Series/Image (C.7.3.1, C.7.6.1): what the
        # object is and how frames are ordered.
        "SOPClassUID",
        "SpecificCharacterSet",
        "Modality",
        "ImageType",
        "SeriesNumber",
        "InstanceNumber",
        "AcquisitionNumber",
        "PatientOrientation",
        "ImageLaterality",
        "Laterality",
        "BodyPartExamined",
        "ViewPosition",
        "PatientPosition",
        "BurnedInAnnotation",
        "RecognizableVisualFeatures",
        # C.7.6.1.1.5: lossy history must travel with the pixels.
        "LossyImageCompression",
        "LossyImageCompressionRatio",
        "LossyImageCompressionMethod",
        # Image Plane (C.7.6.2): geometry for measurement and 3-D ordering.
        "PixelSpacing",
        "ImagerPixelSpacing",
        "SliceThickness",
        "SpacingBetweenSlices",
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "SliceLocation",
        # Image Pixel (C.7.6.3) and Multi-frame (C.7.6.6): needed to decode the pixels.
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "PlanarConfiguration",
        "PixelAspectRatio",
        "NumberOfFrames",
        "FrameIncrementPointer",
        "FrameTime",
        "FrameTimeVector",
        "PixelData",
        "FloatPixelData",
        "DoubleFloatPixelData",
        "ExtendedOffsetTable",
        "ExtendedOffsetTableLengths",
        "PixelPaddingValue",
        "PixelPaddingRangeLimit",
        "RedPaletteColorLookupTableDescriptor",
        "GreenPaletteColorLookupTableDescriptor",
        "BluePaletteColorLookupTableDescriptor",
        "RedPaletteColorLookupTableData",
        "GreenPaletteColorLookupTableData",
        "BluePaletteColorLookupTableData",
        "SegmentedRedPaletteColorLookupTableData",
        "SegmentedGreenPaletteColorLookupTableData",
        "SegmentedBluePaletteColorLookupTableData",
        # Modality LUT (C.11.1), VOI LUT (C.11.2), Presentation LUT (C.11.6): display values.
        # LUT Explanation and Window Center & Width Explanation are free text: not kept.
        "RescaleIntercept",
        "RescaleSlope",
        "RescaleType",
        "ModalityLUTSequence",
        "ModalityLUTType",
        "LUTDescriptor",
        "LUTData",
        "WindowCenter",
        "WindowWidth",
        "VOILUTFunction",
        "VOILUTSequence",
        "PresentationLUTShape",
        # Enhanced multi-frame functional groups (C.7.6.16) and the macros carrying the same
        # geometry and LUT attributes per frame (C.7.6.16.2.1-2.3, 2.9, 2.10).
        "SharedFunctionalGroupsSequence",
        "PerFrameFunctionalGroupsSequence",
        "PixelMeasuresSequence",
        "PlanePositionSequence",
        "PlaneOrientationSequence",
        "PixelValueTransformationSequence",
        "FrameVOILUTSequence",
    }
)

# Instance UIDs kept but replaced by the keyed mapping (Table E.1-1 action U).
REPLACE_UIDS: frozenset[str] = frozenset(
    {"SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"}
)

# Type 2 attributes of the Patient and General Study modules (PS3.3 C.7.1.1, C.7.2.1) that
# every image IOD requires present: written zero-length (Table E.1-1 action Z).
EMPTY_ALWAYS: tuple[str, ...] = (
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
# Type 2 in some IODs (General Image C.7.6.1, General Equipment C.7.5.1): zero-length if the
# original had them, so the output stays a valid instance of the same IOD.
EMPTY_IF_PRESENT: tuple[str, ...] = ("ContentDate", "ContentTime", "Manufacturer")

# PS3.16 CID 7050: the Basic Application Confidentiality Profile code.
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
# LO, at most 64 characters (PS3.5 6.2).
DEIDENTIFICATION_METHOD = "MedAI keep-list de-identification (PS3.15 E Basic Profile)"

# Attributes this module writes itself; the audit accepts them.
_WRITTEN = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientIdentityRemoved",
        "DeidentificationMethod",
        "DeidentificationMethodCodeSequence",
        "LongitudinalTemporalInformationModified",
        "CodeValue",
        "CodingSchemeDesignator",
        "CodeMeaning",
        *EMPTY_ALWAYS,
        *EMPTY_IF_PRESENT,
    }
)
# PS3.5 B.2: a UID under the 2.25 root is the decimal form of a 128-bit UUID.
_MIN_KEY_BYTES = 16


class DeidentificationError(RuntimeError):
    """The output failed the post-run audit: a bug in the keep-list, never a user error."""


@dataclass(frozen=True)
class DeidReport:
    """What was changed, as counts and attribute names only (never values: it may be logged)."""

    kept: int
    removed: int
    removed_private: int
    replaced_uids: int
    emptied: tuple[str, ...]
    replaced: tuple[str, ...]
    removed_attributes: tuple[str, ...]


@dataclass(frozen=True)
class DeidResult:
    """The de-identified DICOM file (PS3.10 bytes) and the report of what changed."""

    data: bytes
    report: DeidReport
    sop_instance_uid: str
    study_instance_uid: str | None
    series_instance_uid: str | None


def pseudonymous_uid(original: str, key: bytes) -> str:
    """Return the keyed, deterministic replacement '2.25.<int>' for a UID (PS3.5 B.2)."""
    _check_key(key)
    return keyed_uid(original, key)


def deidentify(
    source: bytes | Dataset | LoadedScan,
    *,
    uid_key: bytes,
    patient_name: str,
    patient_id: str,
    keep_uids: bool = False,
) -> DeidResult:
    """Return the de-identified file and report; ScanRejected if the header declares burned-in
    text or recognisable features, or it is not DICOM. Images that only *may* carry text are
    de-identified here; burned_in.burned_in_assessment tells the caller to hold them.
    ``keep_uids``: the source was already de-identified with ``uid_key`` (a study from the
    unmatched inbox), so its UIDs are kept rather than replaced a second time."""
    # `source` should already have passed intake.load_upload; a bad key or pseudonym is a
    # programming error (ValueError), not a rejected scan.
    _check_key(uid_key)
    _check_pseudonym(patient_name, patient_id)
    original = _as_dataset(source)
    assessment = burned_in_assessment(original)
    if assessment.verdict == Verdict.REJECT:
        raise ScanRejected(RejectCode.BURNED_IN_ANNOTATION, assessment.reason)
    transfer_syntax = _transfer_syntax(original)

    tally = _Tally()
    output = _filter(original, None if keep_uids else uid_key, tally)
    _write_identity(output, original, patient_name, patient_id, tally)

    sop_class = str(original.get("SOPClassUID", "") or "")
    sop_instance = str(output.get("SOPInstanceUID", "") or "")
    if not sop_class or not sop_instance:
        raise ScanRejected(
            RejectCode.INVALID_ATTRIBUTE,
            "The DICOM file lacks SOP Class UID (0008,0016) or SOP Instance UID (0008,0018), "
            "so a de-identified copy cannot be written.",
        )
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    # PS3.10 7.1: the meta's instance UID must equal the data set's SOP Instance UID.
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = transfer_syntax
    output.file_meta = meta
    # PS3.10 7.5: the preamble may carry another format's header (e.g. TIFF with PHI).
    output.preamble = b"\x00" * 128
    output.set_original_encoding(*_encoding(transfer_syntax), original.original_character_set)

    _audit(output, patient_name, patient_id)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, output, enforce_file_format=True)
    report = DeidReport(
        kept=tally.kept,
        removed=sum(tally.removed.values()),
        removed_private=tally.removed_private,
        replaced_uids=tally.replaced_uids,
        emptied=tuple(sorted(tally.emptied)),
        replaced=tuple(sorted(tally.replaced)),
        removed_attributes=tuple(sorted(tally.removed)),
    )
    return DeidResult(
        data=buffer.getvalue(),
        report=report,
        sop_instance_uid=sop_instance,
        study_instance_uid=str(output.get("StudyInstanceUID", "") or "") or None,
        series_instance_uid=str(output.get("SeriesInstanceUID", "") or "") or None,
    )


# --- filtering -----------------------------------------------------------------------------


class _Tally:
    """Counters for the report."""

    def __init__(self) -> None:
        self.kept = 0
        self.removed: Counter[str] = Counter()
        self.removed_private = 0
        self.replaced_uids = 0
        self.emptied: set[str] = set()
        self.replaced: set[str] = set()


def _filter(source: Dataset, key: bytes | None, tally: _Tally) -> Dataset:
    """Copy only keep-listed elements of `source`, recursing into kept sequences; UIDs are
    replaced with ``key``, or kept as they are when it is None (already replaced)."""
    target = Dataset()
    for tag in source.keys():
        if tag.group == 0x0002:
            continue  # file meta is rebuilt from scratch
        if tag.is_private:
            tally.removed_private += 1
            tally.removed["private attributes"] += 1
            continue
        keyword = keyword_for_tag(tag)
        if keyword in REPLACE_UIDS:
            element = source[tag]
            if element.value and key is None:
                target.add_new(tag, "UI", str(element.value))
            elif element.value:
                target.add_new(tag, "UI", pseudonymous_uid(str(element.value), key))
                tally.replaced_uids += 1
                tally.replaced.add(keyword)
            continue
        if keyword not in KEEP:
            tally.removed[keyword or _unknown_label(tag)] += 1
            continue
        element = source[tag]
        if element.VR == "SQ":
            items = [_filter(item, key, tally) for item in element.value]
            target.add(DataElement(tag, "SQ", Sequence(items)))
        else:
            target.add(_copy_element(element))
        tally.kept += 1
    return target


def _copy_element(element: DataElement) -> DataElement:
    """Copy an element (value, VR, undefined length of encapsulated pixel data) as read."""
    return copy.deepcopy(element)


def _unknown_label(tag: BaseTag) -> str:
    """Name a tag pydicom's dictionary does not know, for the report."""
    return element_label(tag)


def _write_identity(
    output: Dataset, original: Dataset, patient_name: str, patient_id: str, tally: _Tally
) -> None:
    """Set the pseudonym, the Type 2 blanks and the PS3.15 E.1.1 de-identification marks."""
    output.PatientName = patient_name
    output.PatientID = patient_id
    tally.replaced.update({"PatientName", "PatientID"})
    for keyword in EMPTY_ALWAYS:
        setattr(output, keyword, "")
        tally.emptied.add(keyword)
    for keyword in EMPTY_IF_PRESENT:
        if keyword in original:
            setattr(output, keyword, "")
            tally.emptied.add(keyword)
    # PS3.15 E.1.1 (and PS3.3 C.7.1.1): mark the instance as de-identified, and by what.
    output.PatientIdentityRemoved = "YES"
    output.DeidentificationMethod = DEIDENTIFICATION_METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = BASIC_PROFILE_CODE
    output.DeidentificationMethodCodeSequence = Sequence([code])
    # PS3.3 C.12.1 (SOP Common), PS3.15 E.3.6: dates and times were removed, not shifted.
    output.LongitudinalTemporalInformationModified = "REMOVED"
    for keyword in ("PatientName", "PatientID"):
        tally.removed.pop(keyword, None)


# --- inputs --------------------------------------------------------------------------------


def _as_dataset(source: bytes | Dataset | LoadedScan) -> Dataset:
    """Parse bytes as DICOM (part 10 or a bare data set), or return the given data set."""
    if isinstance(source, LoadedScan):
        if source.dataset is None:
            raise ScanRejected(
                RejectCode.NOT_DICOM,
                "Only DICOM files can be de-identified; this upload is "
                f"{source.info.kind.upper()}.",
            )
        return source.dataset
    if isinstance(source, Dataset):
        return source
    data = bytes(source)
    if not (is_part10(data) or looks_like_bare_dataset(data)):
        raise ScanRejected(
            RejectCode.NOT_DICOM, "Only DICOM files can be de-identified; this is not one."
        )
    try:
        return pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:  # the intake rejects these first; keep the message specific
        raise ScanRejected(
            RejectCode.CORRUPT,
            "The DICOM data could not be parsed for de-identification; it is damaged.",
            detail=repr(exc),
        ) from exc


def _transfer_syntax(dataset: Dataset) -> UID:
    """Return the data set's transfer syntax, inferring it for bare data sets."""
    meta = getattr(dataset, "file_meta", None)
    value = meta.get("TransferSyntaxUID") if meta is not None else None
    if value:
        return UID(str(value))
    implicit, little = dataset.original_encoding
    if implicit:
        return pydicom.uid.ImplicitVRLittleEndian
    return pydicom.uid.ExplicitVRLittleEndian if little else pydicom.uid.ExplicitVRBigEndian


def _encoding(transfer_syntax: UID) -> tuple[bool, bool]:
    """Return (implicit VR, little endian) for writing with `transfer_syntax`."""
    if transfer_syntax == pydicom.uid.ImplicitVRLittleEndian:
        return True, True
    return False, transfer_syntax != pydicom.uid.ExplicitVRBigEndian


def _check_key(key: bytes) -> None:
    """Require a real secret: at least 128 bits."""
    if not isinstance(key, bytes | bytearray) or len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"uid_key must be at least {_MIN_KEY_BYTES} bytes of secret material")


def _check_pseudonym(patient_name: str, patient_id: str) -> None:
    """Require PN/LO-conformant pseudonyms (PS3.5 6.2: 64 characters, no backslash)."""
    for label, value in (("patient_name", patient_name), ("patient_id", patient_id)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{label} must be a non-empty pseudonym")
        if len(value) > 64 or "\\" in value or any(ord(c) < 32 for c in value):
            raise ValueError(f"{label} must be at most 64 characters, without '\\' or controls")
        if not value.isascii():
            raise ValueError(f"{label} must be ASCII so it is valid in any character set")


# --- policy checks -------------------------------------------------------------------------


def _check_policy_against_profile() -> None:
    """Fail at import if the keep-list would let through anything Table E.1-1 acts on."""
    profile = basic_profile()
    problems: list[str] = []
    for keyword in sorted(KEEP):
        tag = tag_for_keyword(keyword)
        if tag is None:
            problems.append(f"{keyword}: not a DICOM keyword")
            continue
        actions = profile.actions(tag)
        if actions and "K" not in actions:
            problems.append(f"{keyword}: Table E.1-1 action {'/'.join(sorted(actions))}")
    for keyword in REPLACE_UIDS:
        tag = tag_for_keyword(keyword)
        if tag is None or "U" not in profile.actions(tag):
            problems.append(f"{keyword}: not a Table E.1-1 'U' attribute")
    for keyword in (*EMPTY_ALWAYS, *EMPTY_IF_PRESENT, "PatientName", "PatientID"):
        tag = tag_for_keyword(keyword)
        actions = profile.actions(tag) if tag is not None else frozenset()
        if actions and not actions & {"Z", "D"}:
            problems.append(f"{keyword}: Table E.1-1 forbids a blank or dummy value")
    if problems:
        raise DeidentificationError("keep-list conflicts with PS3.15: " + "; ".join(problems))


def _walk(dataset: Dataset) -> Iterable[DataElement]:
    """Yield every element, depth first, including those inside sequence items."""
    for element in dataset:
        yield element
        if element.VR == "SQ":
            for item in element.value:
                yield from _walk(item)


def _audit(output: Dataset, patient_name: str, patient_id: str) -> None:
    """Check the output against the policy and Table E.1-1 before it leaves this module."""
    profile = basic_profile()
    for element in _walk(output):
        tag = Tag(element.tag)
        keyword = keyword_for_tag(tag)
        where = element_label(tag)
        if tag.is_private:
            raise DeidentificationError(f"private attribute {where} survived")
        if keyword not in KEEP | REPLACE_UIDS | _WRITTEN:
            raise DeidentificationError(f"{where} is on no keep-list")
        actions = profile.actions(tag)
        if not actions or "K" in actions:
            continue
        value = element.value
        if keyword in REPLACE_UIDS:
            if not str(value).startswith(UUID_ROOT):
                raise DeidentificationError(f"{where} was not replaced")
        elif keyword == "PatientName":
            if str(value) != patient_name:
                raise DeidentificationError("Patient's Name is not the pseudonym")
        elif keyword == "PatientID":
            if str(value) != patient_id:
                raise DeidentificationError("Patient ID is not the pseudonym")
        elif value not in (None, "", b"") and not (isinstance(value, list | tuple) and not value):
            raise DeidentificationError(f"{where} (Table E.1-1 {'/'.join(actions)}) has a value")


_check_policy_against_profile()
