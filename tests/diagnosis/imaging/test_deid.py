"""De-identification: nothing identifying survives in the output bytes, UIDs map consistently."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from diagnosis.imaging import deid
from diagnosis.imaging.deid import (
    KEEP,
    DeidentificationError,
    deidentify,
    pseudonymous_uid,
)
from diagnosis.imaging.errors import RejectCode, ScanRejected
from diagnosis.imaging.intake import load_upload
from diagnosis.imaging.ps3_15 import basic_profile
from tests.diagnosis.imaging.imaging_samples import (
    MAX_BYTES,
    MAX_PIXELS,
    NEMA_DIR,
    png_bytes,
    pydicom_file_bytes,
)

KEY = b"medai-test-key-0123456789abcdef!"
OTHER_KEY = b"another-secret-key-for-the-tests"
PSEUDONYM = ("MEDAI^P000042", "P000042")
# Identifying values shorter than this are not searched for: "1" or "M" occur by chance.
MIN_TOKEN = 4
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{8,}")
# Binary numbers (e.g. a private SL 60000) are not text a leak would show, and their decimal
# form matches unrelated kept values ("60000" inside Pixel Spacing "2.260000").
_NOT_SEARCHED_VRS = frozenset({"SQ", "SL", "SS", "UL", "US", "FL", "FD", "SV", "UV", "AT"})


def _deid(data: bytes, key: bytes = KEY) -> deid.DeidResult:
    return deidentify(data, uid_key=key, patient_name=PSEUDONYM[0], patient_id=PSEUDONYM[1])


def _source(name: str) -> bytes:
    if name.startswith("nema:"):
        path = NEMA_DIR / name.removeprefix("nema:")
        if not path.exists():
            pytest.skip("NEMA WG04 files are not mounted")
        return path.read_bytes()
    return pydicom_file_bytes(name)


def _walk(dataset: Dataset) -> Iterator[pydicom.DataElement]:
    for element in dataset:
        yield element
        if element.VR == "SQ":
            for item in element.value:
                yield from _walk(item)


def _tokens(value: object) -> set[str]:
    """Split a DICOM value into the pieces a leak would show (names by component)."""
    if isinstance(value, bytes):
        return {run.decode() for run in _PRINTABLE_RUN.findall(value)}
    values = value if isinstance(value, list | tuple | pydicom.multival.MultiValue) else [value]
    tokens: set[str] = set()
    for item in values:
        text = str(item).strip()
        tokens.add(text)
        tokens.update(re.split(r"[\^=\\]", text))
    return {token.strip() for token in tokens if len(token.strip()) >= MIN_TOKEN}


def _is_identifying(element: pydicom.DataElement) -> bool:
    """PN, DA, DT, TM; anything Table E.1-1 does not keep; private; non-standard UIDs."""
    actions = basic_profile().actions(element.tag)
    return bool(
        element.VR in ("PN", "DA", "DT", "TM")
        or element.tag.is_private
        or (actions and "K" not in actions)
        or (element.VR == "UI" and not str(element.value).startswith("1.2.840.10008."))
    )


def _identifying_tokens(original: Dataset) -> dict[str, set[str]]:
    """Collect every identifying value of the original header, by attribute name.

    Identifying: any PN, DA, DT, TM; any attribute PS3.15 Table E.1-1 does not let through
    unchanged (IDs, institution, accession number, UIDs, comments, descriptions...); every
    private attribute; every UID that is not a standard (1.2.840.10008.*) one.
    """
    found: dict[str, set[str]] = {}
    for element in _walk(original):
        if element.VR in _NOT_SEARCHED_VRS or element.tag == 0x7FE00010:
            continue
        if _is_identifying(element) and element.value not in (None, "", b""):
            tokens = _tokens(element.value)
            if tokens:
                found.setdefault(element.name, set()).update(tokens)
    return found


def _searchable(data: bytes) -> bytes:
    """The output bytes plus, for deflated output, the inflated data set."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    if dataset.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian:
        plain = io.BytesIO()
        dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        dataset.save_as(plain, enforce_file_format=True)
        return data + plain.getvalue()
    return data


def _allowed_tokens(output: Dataset) -> set[str]:
    """Values that may appear: non-identifying output attributes, the pseudonym, the marks.

    Values of identifying attributes in the output are never allowed, so an attribute that
    slipped through a bad keep-list still counts as a leak.
    """
    allowed = _tokens(list(PSEUDONYM)) | _tokens(deid.DEIDENTIFICATION_METHOD)
    for element in _walk(output):
        if element.VR in _NOT_SEARCHED_VRS or element.tag == 0x7FE00010:
            continue
        if not _is_identifying(element):
            allowed |= _tokens(element.value)
    return allowed


SOURCES = [
    "nema:CT1_UNC",
    "nema:MR1_J2KR",
    "nema:US1_RLE",
    "nema:XA1_JPLL",
    "nema:NM1_JLSL",
    "CT_small.dcm",
    "MR_small.dcm",
    "emri_small.dcm",
    "eCT_Supplemental.dcm",
    "OT-PAL-8-face.dcm",
    "image_dfl.dcm",
    "MR_small_bigendian.dcm",
    "explicit_VR-UN.dcm",
]
# Sources whose Patient's Name is empty (every other one names a patient).
NAMELESS = {"emri_small.dcm"}


@pytest.mark.parametrize("name", SOURCES)
def test_no_identifying_value_survives_anywhere_in_the_output(name: str) -> None:
    data = _source(name)
    original = pydicom.dcmread(io.BytesIO(data), force=True)
    result = _deid(data)
    output = pydicom.dcmread(io.BytesIO(result.data))
    searchable = _searchable(result.data)
    allowed = _allowed_tokens(output)
    identifying = _identifying_tokens(original)
    assert identifying, "the test must have something to look for"
    assert ("Patient's Name" in identifying) is (name not in NAMELESS)

    leaks = {
        attribute: sorted(
            token
            for token in tokens
            if token not in allowed
            and any(token.encode(codec, "ignore") in searchable for codec in ("utf-8", "latin-1"))
        )
        for attribute, tokens in identifying.items()
    }
    leaks = {attribute: tokens for attribute, tokens in leaks.items() if tokens}
    assert not leaks, f"identifying values survived: {leaks}"

    # Every UID of the original (other than standard ones) is gone from the bytes too.
    for element in _walk(original):
        if element.VR == "UI" and element.value:
            uid = str(element.value)
            if not uid.startswith("1.2.840.10008.") and uid != str(original.get("SOPClassUID")):
                assert uid.encode() not in searchable, element.name


@pytest.mark.parametrize("name", SOURCES)
def test_output_is_marked_and_pixels_are_unchanged(name: str) -> None:
    data = _source(name)
    result = _deid(data)
    output = pydicom.dcmread(io.BytesIO(result.data))
    assert output.PatientIdentityRemoved == "YES"
    assert output.PatientName == PSEUDONYM[0] and output.PatientID == PSEUDONYM[1]
    code = output.DeidentificationMethodCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")
    assert code.CodeMeaning == "Basic Application Confidentiality Profile"
    assert output.DeidentificationMethod
    assert not any(element.tag.is_private for element in _walk(output))
    assert output.preamble == b"\x00" * 128
    assert output.file_meta.MediaStorageSOPInstanceUID == output.SOPInstanceUID
    assert output.SOPInstanceUID.startswith("2.25.")
    assert output.StudyDate == "" and output.AccessionNumber == ""

    original = pydicom.dcmread(io.BytesIO(data), force=True)
    syntax = original.file_meta.get("TransferSyntaxUID") if original.file_meta else None
    if syntax:
        assert output.file_meta.TransferSyntaxUID == syntax
    assert output.PixelData == original.PixelData  # the encoded bytes, not just the image
    before = load_upload(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    after = load_upload(result.data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    np.testing.assert_array_equal(before.pixels, after.pixels)
    assert after.info.rows == before.info.rows and after.info.frames == before.info.frames


def test_uids_are_consistent_across_files_of_one_series() -> None:
    first = _source("nema:CT1_UNC")
    second = _source("nema:CT1_J2KR")  # same study/series, compressed differently
    a, b = (pydicom.dcmread(io.BytesIO(_deid(data).data)) for data in (first, second))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert a[keyword].value == b[keyword].value
    # Two instances of one series: shared series UID, distinct instance UIDs.
    dataset = pydicom.dcmread(io.BytesIO(pydicom_file_bytes("CT_small.dcm")))
    sibling = io.BytesIO()
    dataset.SOPInstanceUID = dataset.SOPInstanceUID + ".2"
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.save_as(sibling)
    one = _deid(pydicom_file_bytes("CT_small.dcm"))
    two = _deid(sibling.getvalue())
    assert one.series_instance_uid == two.series_instance_uid
    assert one.study_instance_uid == two.study_instance_uid
    assert one.sop_instance_uid != two.sop_instance_uid


def test_different_keys_give_different_uids() -> None:
    data = pydicom_file_bytes("CT_small.dcm")
    one, two = _deid(data, KEY), _deid(data, OTHER_KEY)
    assert one.sop_instance_uid != two.sop_instance_uid
    assert one.study_instance_uid != two.study_instance_uid
    assert _deid(data, KEY).sop_instance_uid == one.sop_instance_uid  # deterministic


def test_a_copy_already_de_identified_keeps_its_uids_when_asked() -> None:
    once = _deid(pydicom_file_bytes("CT_small.dcm"))
    again = deidentify(
        once.data, uid_key=KEY, patient_name="OTHER", patient_id="OTHER", keep_uids=True
    )
    twice = _deid(once.data)
    assert again.sop_instance_uid == once.sop_instance_uid
    assert again.study_instance_uid == once.study_instance_uid
    assert again.series_instance_uid == once.series_instance_uid
    # Without it, the UIDs would be replaced a second time.
    assert twice.sop_instance_uid != once.sop_instance_uid
    assert pydicom.dcmread(io.BytesIO(again.data)).PatientID == "OTHER"


def test_pseudonymous_uid_is_a_valid_2_25_uuid() -> None:
    uid = pseudonymous_uid("1.2.3.4.5", KEY)
    assert uid.startswith("2.25.") and len(uid) <= 64
    value = int(uid.removeprefix("2.25."))
    assert value < 2**128
    assert (value >> 76) & 0xF == 8 and (value >> 62) & 0x3 == 0b10  # RFC 9562 v8, variant
    assert pydicom.uid.UID(uid).is_valid
    assert pseudonymous_uid("1.2.3.4.5\x00", KEY) == uid  # padding does not change identity


def test_burned_in_annotation_is_held_back() -> None:
    dataset = pydicom.dcmread(io.BytesIO(pydicom_file_bytes("CT_small.dcm")))
    dataset.BurnedInAnnotation = "YES"
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    with pytest.raises(ScanRejected) as caught:
        _deid(buffer.getvalue())
    assert caught.value.code is RejectCode.BURNED_IN_ANNOTATION
    assert "held back" in caught.value.message and "identif" in caught.value.message


def test_deny_by_default_drops_unlisted_attributes_even_inside_kept_sequences() -> None:
    dataset = pydicom.dcmread(io.BytesIO(pydicom_file_bytes("CT_small.dcm")))
    dataset.ImageComments = "Fell at home, Mr Smith of 12 Elm Street"
    dataset.KVP = "120"  # harmless, but not needed: deny-by-default drops it
    dataset.Manufacturer = "ACME Scanners Ltd"
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    referenced.ReferencedSOPInstanceUID = "1.2.826.0.1.999.1"
    dataset.ReferencedImageSequence = Sequence([referenced])
    lut = Dataset()
    lut.add_new(0x00283002, "US", [4, 0, 8])  # LUT Descriptor
    lut.add_new(0x00283006, "US", [0, 100, 200, 255])  # LUT Data
    lut.LUTExplanation = "Window chosen by Dr Jones"
    dataset.VOILUTSequence = Sequence([lut])
    dataset.add_new(0x00431010, "LO", "private vendor note")
    buffer = io.BytesIO()
    dataset.save_as(buffer)

    result = _deid(buffer.getvalue())
    output = pydicom.dcmread(io.BytesIO(result.data))
    for gone in ("ImageComments", "KVP", "ReferencedImageSequence"):
        assert gone not in output
    assert output.Manufacturer == ""  # Type 2: kept present, emptied
    assert "LUTExplanation" not in output.VOILUTSequence[0]
    assert list(output.VOILUTSequence[0].LUTData) == [0, 100, 200, 255]
    for text in (b"Mr Smith", b"Dr Jones", b"ACME", b"1.2.826.0.1.999.1", b"private vendor"):
        assert text not in result.data
    report = result.report
    assert report.removed_private >= 1 and report.replaced_uids >= 3
    assert {"ImageComments", "KVP", "ReferencedImageSequence"} <= set(report.removed_attributes)
    assert "Manufacturer" in report.emptied and "PatientName" in report.replaced


def test_report_counts_match_the_input() -> None:
    data = _source("nema:CT1_UNC")
    original = pydicom.dcmread(io.BytesIO(data))
    report = _deid(data).report
    private = sum(1 for element in original if element.tag.is_private)
    assert private > 100 and report.removed_private >= private
    assert report.replaced_uids == 4  # SOP Instance, Study, Series, Frame of Reference
    assert report.kept > 10 and report.removed > private
    assert not any(char.isdigit() for name in report.removed_attributes for char in name[:1])


def test_keep_list_is_checked_against_table_e1_1(monkeypatch: pytest.MonkeyPatch) -> None:
    deid._check_policy_against_profile()  # the shipped policy passes
    monkeypatch.setattr(deid, "KEEP", KEEP | {"InstitutionName"})
    with pytest.raises(DeidentificationError, match="InstitutionName"):
        deid._check_policy_against_profile()


def test_audit_catches_a_leaking_keep_list(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate a bad edit that keeps Institution Name without the import-time check.
    monkeypatch.setattr(deid, "KEEP", KEEP | {"InstitutionName"})
    with pytest.raises(DeidentificationError, match="Institution Name"):
        _deid(_source("nema:CT1_UNC"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"uid_key": b"short"}, "uid_key"),
        ({"patient_name": ""}, "patient_name"),
        ({"patient_id": "A\\B"}, "patient_id"),
        ({"patient_name": "X" * 65}, "patient_name"),
    ],
)
def test_bad_key_or_pseudonym_is_a_programming_error(
    kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "uid_key": KEY,
        "patient_name": PSEUDONYM[0],
        "patient_id": PSEUDONYM[1],
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        deidentify(pydicom_file_bytes("CT_small.dcm"), **arguments)  # type: ignore[arg-type]


def test_non_dicom_input_is_rejected() -> None:
    with pytest.raises(ScanRejected) as caught:
        _deid(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert caught.value.code is RejectCode.NOT_DICOM
    png = load_upload(png_bytes(np.zeros((4, 4), np.uint8)), max_bytes=MAX_BYTES, max_pixels=99)
    with pytest.raises(ScanRejected, match="this upload is PNG"):
        deidentify(png, uid_key=KEY, patient_name=PSEUDONYM[0], patient_id=PSEUDONYM[1])


def test_loaded_scan_can_be_deidentified_directly() -> None:
    data = pydicom_file_bytes("MR_small.dcm")
    scan = load_upload(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    result = deidentify(scan, uid_key=KEY, patient_name=PSEUDONYM[0], patient_id=PSEUDONYM[1])
    assert result.data == _deid(data).data
    assert scan.dataset is not None and scan.dataset.PatientName != PSEUDONYM[0]  # untouched


def test_table_is_shipped_with_its_source_note() -> None:
    data_dir = Path(deid.__file__).with_name("data")
    assert (data_dir / "dicom_ps3.15_table_e1-1_2025b.json").is_file()
    note = (data_dir / "README.md").read_text()
    assert "innolitics/dicom-standard" in note and "Table E.1-1" in note
    assert len(basic_profile()) == 647
