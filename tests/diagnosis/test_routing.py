"""Routing by input contract: with several imaging models in service, a DICOM whose header
fits another model's contract better than the chosen one's is classified by that model, and
its prediction says so; everything else stays with the model the clinician chose."""

from __future__ import annotations

import pytest

from diagnosis.imaging.contract import InputContract
from diagnosis.models import Prediction
from diagnosis.services import scan_upload
from medai_site.jobs.models import Job
from tests.diagnosis.files import chest_cr_dicom, chest_png, ct_head_dicom, pydicom_bytes, upload
from tests.diagnosis.model_versions import TASK, artifact_variant, register_version
from tests.platform.factories import JobFactory, patient_for

pytestmark = pytest.mark.django_db

HEAD_CT = "diagnosis.headct"


@pytest.fixture
def head_ct_model(users, chest_model, tiny_artifact):
    """A second model in service, for head CTs, beside the chest radiograph model."""
    contract = InputContract(
        description="head CT slices",
        modalities=("CT",),
        body_parts=("HEAD",),
        photometric=("MONOCHROME2",),
        channels=1,
        min_size=(28, 28),
    ).to_dict()
    return register_version(users, artifact_variant(tiny_artifact, contract=contract), task=HEAD_CT)


def test_a_dicom_is_routed_to_the_model_whose_contract_fits(
    users, chest_model, head_ct_model, client_for, run_job
):
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[
            upload("chest.png", chest_png()),
            upload("cr.dcm", chest_cr_dicom()),
            upload("IM0001", ct_head_dicom()),
            upload("mr.dcm", pydicom_bytes("emri_small.dcm")),
        ],
    )
    assert [j.params["task"] for j in outcome.jobs] == [TASK, HEAD_CT]
    for job in outcome.jobs:
        assert run_job(job).status == Job.Status.SUCCEEDED
    by_name = {p.scan.original_name: p for p in Prediction.objects.select_related("scan")}
    assert len(by_name) == 4 and Prediction.objects.count() == 4  # one answer per scan
    ct = by_name["IM0001"]
    assert ct.model_version == head_ct_model and ct.scope_check != "gate"
    assert ct.scan.info["route"]["task"] == HEAD_CT and ct.scan.info["route"]["chosen"] == TASK
    assert "head CT slices" in ct.scan.info["route"]["why"]
    assert by_name["cr.dcm"].model_version == chest_model and by_name["cr.dcm"].scored
    assert by_name["chest.png"].model_version == chest_model
    # Fits neither contract (an MR): stays with the chosen model, which refuses it.
    mr = by_name["mr.dcm"]
    assert mr.model_version == chest_model and mr.scope_check == "gate"
    assert "route" not in mr.scan.info
    # A second run of either job writes nothing twice.
    for job in outcome.jobs:
        again = JobFactory(kind=job.kind, title="again", owner=users.clinician_a, params=job.params)
        run_job(again)
    assert Prediction.objects.count() == 4
    client = client_for(users.clinician_a)
    viewer = client.get(f"/diagnosis/scans/{ct.scan_id}/").content.decode()
    assert "data-route" in viewer and f"Routed to {HEAD_CT}" in viewer
    form = client.get(f"/diagnosis/patients/{patient.pk}/scans/").content.decode()
    assert "reads chest radiographs (CR/DX, chest)" in form and "reads head CT slices" in form


def test_one_model_in_service_routes_nothing(users, chest_model):
    outcome = scan_upload(
        patient=patient_for(users.clinician_a),
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("IM0001", ct_head_dicom())],
    )
    assert len(outcome.jobs) == 1 and "scan_ids" not in outcome.job.params
    assert "route" not in outcome.scans[0].info
