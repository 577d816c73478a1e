"""The task choice with several imaging models in service: each option carries what its
contract checks of a PNG/JPEG (the same terms the server's routing reads), and a POST that
names a model which cannot take a file routes that file to one that can, or, when none can,
leaves it to the metadata gate's clear refusal; never a silent score."""

from __future__ import annotations

import html
import io

import numpy as np
import pytest
from PIL import Image

from diagnosis.imaging.contract import InputContract, contract_file_terms, file_fit
from diagnosis.models import Prediction, Scan
from medai_site.jobs.models import Job
from tests.diagnosis.files import chest_png, upload
from tests.diagnosis.model_versions import TASK, artifact_variant, register_version
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db

DERMA = "diagnosis.derma"


def colour_png(size: int = 64) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    pixels[..., 0] = 200  # visibly colour: the channels differ
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def grey_png(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size), 90, np.uint8), "L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def derma_model(users, chest_model, tiny_artifact):
    """A colour model in service beside the chest radiograph model (greyscale)."""
    contract = InputContract(
        description="dermatoscopic photographs",
        modalities=("XC",),
        channels=3,
        min_size=(28, 28),
    ).to_dict()
    return register_version(users, artifact_variant(tiny_artifact, contract=contract), task=DERMA)


def test_file_fit_reads_what_a_png_can_show():
    chest = contract_file_terms(
        InputContract(
            description="chest radiographs", modalities=("CR",), channels=1, min_size=(28, 28)
        )
    )
    # A PNG carries no modality: a contract that names one still takes a greyscale PNG.
    assert file_fit(chest, kind="png", colour=False, rows=64, cols=64) == ""
    assert "colour" in file_fit(chest, kind="png", colour=True, rows=64, cols=64)
    assert "at least 28x28" in file_fit(chest, kind="jpeg", colour=False, rows=8, cols=8)
    assert file_fit(chest, kind="png", colour=None, rows=None, cols=None) == ""
    assert file_fit(chest, kind="dicom", colour=True, rows=1, cols=1) == ""
    assert file_fit(contract_file_terms(None), kind="png", colour=True, rows=1, cols=1) == ""


def test_options_carry_the_contract_terms(users, derma_model, client_for):
    patient = patient_for(users.clinician_a)
    page = html.unescape(
        client_for(users.clinician_a)
        .get(f"/diagnosis/patients/{patient.pk}/scans/")
        .content.decode()
    )
    select = page.split("data-task-choice", 1)[1].split("</select>", 1)[0]
    chest = select.split(f'value="{TASK}"', 1)[1].split(">", 1)[0]
    derma = select.split(f'value="{DERMA}"', 1)[1].split(">", 1)[0]
    assert 'data-channels="1"' in chest and 'data-min-rows="28"' in chest
    assert 'data-channels="3"' in derma and 'data-min-cols="28"' in derma
    assert "js/scan_upload.js" in page and "data-task-note" in page


def test_a_post_naming_a_model_that_cannot_take_a_file_routes_it(users, derma_model, client_for):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    response = client.post(
        f"/diagnosis/patients/{patient.pk}/scans/",
        {
            "task": TASK,
            "files": [
                upload("mole.png", colour_png(), "image/png"),
                upload("chest.png", chest_png(), "image/png"),
            ],
        },
    )
    assert response.status_code == 302
    scans = {s.original_name: s for s in Scan.objects.all()}
    route = scans["mole.png"].info["route"]
    assert route["task"] == DERMA and route["chosen"] == TASK
    assert "colour image" in route["why"] and "dermatoscopic photographs" in route["why"]
    assert "route" not in scans["chest.png"].info
    jobs = {j.params["task"]: j for j in Job.objects.filter(kind="diagnosis.inference")}
    assert jobs[DERMA].params["scan_ids"] == [scans["mole.png"].pk]
    assert jobs[TASK].params["scan_ids"] == [scans["chest.png"].pk]
    # The other way round: a greyscale image sent to the colour model goes to the chest model.
    client.post(
        f"/diagnosis/patients/{patient.pk}/scans/",
        {"task": DERMA, "files": [upload("cxr.png", chest_png(), "image/png")]},
    )
    assert Scan.objects.get(original_name="cxr.png").info["route"]["task"] == TASK


def test_a_file_no_model_can_take_gets_the_gate_reason(users, derma_model, client_for, run_job):
    patient = patient_for(users.clinician_a)
    client_for(users.clinician_a).post(
        f"/diagnosis/patients/{patient.pk}/scans/",
        {"task": TASK, "files": [upload("tiny.png", grey_png(8), "image/png")]},
    )
    scan = Scan.objects.get()
    assert "route" not in scan.info
    run_job(Job.objects.get(kind="diagnosis.inference"))
    answer = Prediction.objects.get()
    assert not answer.scored and "8x8 pixels (at least 28x28 needed)" in answer.scope_reason
