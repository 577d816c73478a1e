"""The Comprehensive SR and heat-map Secondary Capture, built from plain facts (no database):
read back with pydicom field by field, and validated by dciodvfy with no errors."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pydicom
import pytest

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
    class_code,
)
from tests.diagnosis.imaging.sr_checks import (
    coded,
    dciodvfy,
    find,
    image_refs,
    number,
    one,
    probabilities,
)

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
SHA = "0123456789abcdef" * 4
CR = "1.2.840.10008.5.1.4.1.1.1"
SOURCE = InstanceRef(CR, "2.25.101", "2.25.102", "2.25.103")
STUDY = StudyContext("2.25.103", "MEDAI-0A1B2C", "MEDAI-0A1B2C", "20250101", "101500", "S1", "A7")
HEATMAP = InstanceRef(str(SECONDARY_CAPTURE), "2.25.201", "2.25.202", "2.25.103")
MODEL = ModelIdentity("diagnosis.pneumonia", "4", SHA, "2.25.301")


def facts(**overrides) -> PredictionFacts:
    base = {
        "tracking_id": "MedAI prediction 7",
        "model": MODEL,
        "scope": "in_scope",
        "class_names": ["normal", "pneumonia"],
        "probabilities": {"normal": 0.25, "pneumonia": 0.75},
        "predicted_class": "pneumonia",
        "threshold": 0.42,
        "uncertainty": 0.61,
    }
    return PredictionFacts(**{**base, **overrides})


def built(f: PredictionFacts, *, sources=(SOURCE,), heatmap=HEATMAP) -> pydicom.Dataset:
    ds = build_sr(
        facts=f,
        study=STUDY,
        new=NewObject("2.25.401", "2.25.402", 9901, 1, NOW),
        sources=sources,
        heatmap=heatmap,
    )
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def test_sr_reads_back_every_fact_and_reference():
    review = ReviewState("corrected", "normal", "clinician", NOW)
    ds = built(facts(review=review))
    assert ds.SOPClassUID == COMPREHENSIVE_SR and ds.Modality == "SR"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == "2.25.402"
    assert (ds.StudyInstanceUID, ds.SeriesInstanceUID) == ("2.25.103", "2.25.401")
    assert (ds.PatientID, str(ds.PatientName)) == ("MEDAI-0A1B2C", "MEDAI-0A1B2C")
    assert (ds.StudyDate, ds.AccessionNumber) == ("20250101", "A7")
    assert ds.CompletionFlag == "COMPLETE" and ds.VerificationFlag == "UNVERIFIED"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "126000"
    # Model identity: observer context and algorithm items.
    assert one(ds, "DCM", "121012").UID == "2.25.301"
    assert one(ds, "DCM", "121013").TextValue == "diagnosis.pneumonia v4"
    assert one(ds, "DCM", "111001").TextValue == "diagnosis.pneumonia"
    assert one(ds, "DCM", "111003").TextValue == "4"
    assert one(ds, "99MEDAI", "SHA256").TextValue == SHA
    # The finding, in SNOMED CT, inferred from the source image and the heat-map.
    finding = one(ds, "DCM", "121071")
    assert coded(finding) == ("SCT", "233604007", "Pneumonia")
    assert image_refs(finding, "SCT", "260753009") == [(CR, "2.25.101")]
    assert image_refs(finding, "99MEDAI", "HEATMAP") == [(str(SECONDARY_CAPTURE), "2.25.201")]
    assert probabilities(ds) == {"Normal": 0.25, "Pneumonia": 0.75}
    assert number(one(ds, "99MEDAI", "THRESHOLD")) == pytest.approx(0.42)
    assert number(one(ds, "99MEDAI", "UNCERTAINTY")) == pytest.approx(0.61)
    assert coded(one(ds, "99MEDAI", "SCOPE"))[1] == "IN-SCOPE"
    # The review: corrected to normal, by a clinician (role, never a name), when.
    review_item = one(ds, "99MEDAI", "REVIEW")
    assert coded(review_item)[1] == "CORRECTED"
    assert coded(one(review_item, "99MEDAI", "REVIEW-LABEL"))[1] == "17621005"
    assert coded(one(review_item, "99MEDAI", "REVIEWER-ROLE"))[1:] == ("CLINICIAN", "Clinician")
    assert one(review_item, "99MEDAI", "REVIEW-TIME").DateTime == "20260304050607"
    assert not find(ds, "DCM", "121008")  # no Person Observer Name anywhere
    # The image library and the evidence list the source instance (and the heat-map).
    library = one(ds, "DCM", "111028")
    assert image_refs(library, "SCT", "260753009") == [(CR, "2.25.101")]
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == "2.25.103"
    listed = {
        (series.SeriesInstanceUID, sop.ReferencedSOPInstanceUID)
        for series in evidence.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    assert listed == {("2.25.102", "2.25.101"), ("2.25.202", "2.25.201")}


def test_out_of_scope_sr_says_so_with_no_probabilities():
    ds = built(
        facts(
            scope="out_of_scope",
            probabilities={},
            predicted_class="",
            threshold=None,
            uncertainty=None,
            scope_reason="not scored: a CT of the head; this model reads chest radiographs",
            scope_check="gate",
        ),
        heatmap=None,
    )
    scope = one(ds, "99MEDAI", "SCOPE")
    assert coded(scope)[1:] == ("OUT-OF-SCOPE", "Outside the model's scope")
    assert "CT of the head" in one(scope, "99MEDAI", "SCOPE-REASON").TextValue
    assert coded(one(scope, "99MEDAI", "SCOPE-CHECK"))[1] == "GATE"
    for value in ("CLASS-PROB", "THRESHOLD", "UNCERTAINTY", "HEATMAP", "DECISION-RULE"):
        assert not find(ds, "99MEDAI", value), value
    assert not find(ds, "DCM", "121071")
    assert coded(one(ds, "99MEDAI", "REVIEW"))[1] == "NOT-REVIEWED"
    assert dciodvfy(pydicom_bytes(ds))[0] == []


def test_scored_anyway_keeps_out_of_scope_and_says_who_asked_why():
    ds = built(facts(scope="out_of_scope", override_reason="lateral view, want a read"))
    scope = one(ds, "99MEDAI", "SCOPE")
    assert coded(scope)[1] == "OUT-OF-SCOPE"
    assert one(scope, "99MEDAI", "OVERRIDE").TextValue == "lateral view, want a read"
    assert probabilities(ds)


def test_argmax_model_states_its_rule_and_unknown_classes_use_the_private_scheme():
    ds = built(
        facts(
            class_names=["effusion", "no finding"],
            probabilities={"effusion": 0.9, "no finding": 0.1},
            predicted_class="effusion",
            threshold=None,
        ),
        sources=(),
        heatmap=None,
    )
    assert one(ds, "99MEDAI", "DECISION-RULE").TextValue == "highest class probability"
    assert coded(one(ds, "DCM", "121071")) == ("99MEDAI", "EFFUSION", "effusion")
    assert class_code("no finding").value == "NO-FINDING"
    assert not find(ds, "DCM", "111028")  # no source instances, no image library
    assert "CurrentRequestedProcedureEvidenceSequence" not in ds
    assert dciodvfy(pydicom_bytes(ds))[0] == []


def pydicom_bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def test_sr_passes_dciodvfy_without_errors():
    ds = built(facts(review=ReviewState("accepted", "pneumonia", "clinician", NOW)))
    errors, output = dciodvfy(pydicom_bytes(ds))
    assert "ComprehensiveSR" in output
    assert errors == [], output


def test_heatmap_overlay_colours_only_where_the_model_looked():
    unit = np.full((8, 8), 0.5, dtype=np.float32)
    heat = np.zeros((4, 4), dtype=np.float32)
    heat[0, 0] = 1.0
    rgb = overlay_rgb(unit, heat)
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[7, 7]) == (128, 128, 128)  # cold: the grey image untouched
    red, green, blue = (int(v) for v in rgb[0, 0])
    assert red > 200 and green > 150 and blue < 100  # hot: yellow over grey
    grey = display_grey(np.array([[0.0, 100.0]]), center=50, width=100, invert=True)
    assert grey[0, 0] == pytest.approx(1.0) and grey[0, 1] == pytest.approx(0.0)


def test_secondary_capture_files_in_the_study_and_passes_dciodvfy():
    rgb = overlay_rgb(np.linspace(0, 1, 64 * 48).reshape(64, 48), np.eye(8))
    ds = build_secondary_capture(
        rgb=rgb,
        study=STUDY,
        new=NewObject("2.25.202", "2.25.201", 9902, 1, NOW),
        sources=(SOURCE,),
        description="Grad-CAM heat-map",
    )
    data = pydicom_bytes(ds)
    back = pydicom.dcmread(io.BytesIO(data))
    assert back.SOPClassUID == SECONDARY_CAPTURE and back.StudyInstanceUID == "2.25.103"
    assert back.PhotometricInterpretation == "RGB" and (back.Rows, back.Columns) == (64, 48)
    assert np.array_equal(back.pixel_array, rgb)
    assert back.SourceImageSequence[0].ReferencedSOPInstanceUID == "2.25.101"
    errors, output = dciodvfy(data)
    assert "SCImage" in output
    assert errors == [], output
    with pytest.raises(ValueError, match="uint8 RGB"):
        build_secondary_capture(rgb=rgb[..., 0], study=STUDY, new=None, description="x")
