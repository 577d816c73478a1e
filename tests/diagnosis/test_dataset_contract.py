"""Registering a data set states its input contract (form errors name the bad DICOM term);
the check refuses a contract the images contradict; training carries the stated contract."""

from __future__ import annotations

import numpy as np
import pytest

from diagnosis.ml.artifact import load_artifact
from diagnosis.models import ImageDataset
from diagnosis.services import dataset_register, training_start
from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from medai_site.registry.models import ModelVersion
from tests.diagnosis.model_versions import PNEUMONIA_NPZ

pytestmark = pytest.mark.django_db


def _post(client, **fields):
    data = {"name": "pneu", "task": "diagnosis.pneu", "kind": "npz", "path": str(PNEUMONIA_NPZ)}
    return client.post("/diagnosis/datasets/new/", {**data, **fields})


def _errors(response) -> str:
    return " ".join(
        part.split("</p>")[0] for part in response.content.decode().split('field-error"')[1:]
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reads": "chest films", "modalities": "cr"}, "write &#x27;CR&#x27;, not &#x27;cr&#x27;"),
        ({"reads": "chest films", "modalities": "XRAY"}, "not a DICOM modality code"),
        ({"reads": "chest films", "photometric": "GRAY"}, "not a photometric interpretation"),
        ({"modalities": "CR"}, "what the model reads"),
        ({"reads": "x", "channels": "3", "photometric": "MONOCHROME2"}, "Three channels"),
        ({"reads": "x", "min_size": "big"}, "rows x columns"),
    ],
)
def test_form_refuses_a_bad_contract_with_a_specific_message(
    users, client_for, settings, fields, message
) -> None:
    settings.MEDAI_DATASET_ROOTS = [PNEUMONIA_NPZ.parent]
    response = _post(client_for(users.model_admin), **fields)
    assert response.status_code == 400 and message in _errors(response)
    assert not ImageDataset.objects.exists()


def test_form_stores_the_stated_contract_and_audits_it(users, client_for, settings) -> None:
    settings.MEDAI_DATASET_ROOTS = [PNEUMONIA_NPZ.parent]
    response = _post(
        client_for(users.model_admin),
        reads="adult chest radiographs",
        modalities="DX",
        body_parts="CHEST",
        views="PA",
        photometric="MONOCHROME2",
        channels="1",
        min_size="64x64",
    )
    assert response.status_code == 302
    contract = ImageDataset.objects.get().contract
    assert contract["description"] == "adult chest radiographs"
    assert (contract["modalities"], contract["views"], contract["min_size"]) == (
        ["DX"],
        ["PA"],
        [64, 64],
    )
    event = AuditEvent.objects.filter(detail__dataset_registered="pneu").get()
    assert event.detail["contract"]["modalities"] == ["DX"]


def test_nothing_stated_takes_the_medmnist_default_and_the_page_says_so(
    users, client_for, settings
) -> None:
    settings.MEDAI_DATASET_ROOTS = [PNEUMONIA_NPZ.parent]
    client = client_for(users.model_admin)
    assert _post(client).status_code == 302  # named "pneu", but the file is pneumoniamnist.npz
    assert ImageDataset.objects.get().contract["modalities"] == ["CR", "DX"]
    page = client.get("/diagnosis/training/").content.decode()
    assert "chest radiographs (CR/DX, chest)" in page
    # The upload form is prefilled in the browser from the same defaults the server applies.
    assert "data-contract-form" in page and 'id="contract-defaults"' in page
    assert '"modalities": "CR, DX"' in client.get("/diagnosis/datasets/new/").content.decode()


def _subset_npz(tmp_path, name: str) -> object:
    from diagnosis.ml.data import load_npz

    small = load_npz(PNEUMONIA_NPZ).subset(train=300, val=100, test=100, seed=1)
    path = tmp_path / name
    np.savez(
        path,
        **{
            f"{s}_{k}": getattr(small, f"{s}_{k}")
            for s in ("train", "val", "test")
            for k in ("images", "labels")
        },
    )
    return path


def test_the_check_refuses_a_contract_the_images_contradict(
    users, tmp_path, settings, run_job
) -> None:
    settings.MEDAI_DATASET_ROOTS = [tmp_path]
    dataset = dataset_register(
        name="colour",
        task="diagnosis.colour",
        kind="npz",
        path=str(_subset_npz(tmp_path, "films.npz")),
        class_names=["normal", "pneumonia"],
        contract={"description": "fundus photographs", "channels": 3, "min_size": None},
        created_by=users.model_admin,
    )
    run_job(Job.objects.get(kind="diagnosis.dataset_check", target_id=dataset.pk))
    dataset.refresh_from_db()
    assert dataset.status == "failed"
    assert "input contract says 3 channel(s) but the images have 1" in dataset.message


def test_training_carries_the_stated_contract(users, tmp_path, settings, run_job) -> None:
    settings.MEDAI_DATASET_ROOTS = [tmp_path]
    # Named like the MedMNIST file: without a stated contract the default would apply.
    dataset = dataset_register(
        name="adult chest",
        task="diagnosis.adult",
        kind="npz",
        path=str(_subset_npz(tmp_path, "pneumoniamnist.npz")),
        class_names=["normal", "pneumonia"],
        contract={
            "description": "adult chest radiographs",
            "modalities": ["DX"],
            "body_parts": ["CHEST"],
            "views": ["PA"],
            "photometric": [],
            "channels": None,
            "min_size": None,
        },
        created_by=users.model_admin,
    )
    run_job(Job.objects.get(kind="diagnosis.dataset_check", target_id=dataset.pk))
    dataset.refresh_from_db()
    job = training_start(
        dataset=dataset,
        config={"epochs": 1, "width": 8, "batch_size": 64},
        activate=False,
        user=users.model_admin,
    )
    assert run_job(job).status == Job.Status.SUCCEEDED, job.error
    version = ModelVersion.objects.get(task="diagnosis.adult")
    contract = version.metrics["contract"]
    assert contract["description"] == "adult chest radiographs"
    assert contract["modalities"] == ["DX"] and contract["views"] == ["PA"]
    # Open size and channels settled from the images.
    assert contract["min_size"] == [28, 28] and contract["channels"] == 1
    synthetic = version.metrics["ood"]["synthetic"]
    assert set(synthetic) >= {"noise", "blank", "inverted", "text-screenshot"}
    assert synthetic["noise"]["images"] == version.metrics["ood"]["test_images"]
    assert 0.0 <= synthetic["noise"]["rate"] <= 1.0
    with version.artifact.open("rb") as handle:
        assert load_artifact(handle.read()).contract == contract


def test_the_demo_data_set_carries_the_pneumoniamnist_contract(users, settings) -> None:
    from diagnosis.demo import demo_imaging_ensure

    settings.MEDAI_DATASET_ROOTS = [PNEUMONIA_NPZ.parent]
    settings.MEDAI_VALIDATE_ON_REGISTER = False  # the shipped model's validation: tested elsewhere
    demo_imaging_ensure(user=users.model_admin, train=False)
    dataset = ImageDataset.objects.get(name="PneumoniaMNIST")
    assert dataset.contract["modalities"] == ["CR", "DX"]
    assert dataset.contract["collection"] == "pneumoniamnist"
    # One registered before contracts existed gets the default on the next seed.
    ImageDataset.objects.update(contract={})
    note = demo_imaging_ensure(user=users.model_admin, train=False)
    assert "input contract" in note
    assert ImageDataset.objects.get().contract["body_parts"] == ["CHEST"]
    assert demo_imaging_ensure(user=users.model_admin, train=False) == ""
