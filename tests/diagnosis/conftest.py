"""Diagnosis fixtures: variants of the tiny real model (tests/conftest.py trains it once per
session and puts it in service as active_model) with the PneumoniaMNIST input contract (chest
radiographs) or without an out-of-distribution detector, in service."""

from __future__ import annotations

import pytest

from tests.diagnosis.model_versions import (
    TASK,
    artifact_variant,
    chest_contract,
    register_version,
)


@pytest.fixture
def chest_model(db, users, tiny_artifact):
    """The tiny model with the PneumoniaMNIST contract (chest radiographs, CR/DX) in service."""
    from medai_site.registry.loader import clear_model_cache

    yield register_version(users, artifact_variant(tiny_artifact, contract=chest_contract()))
    clear_model_cache()


@pytest.fixture
def legacy_model(db, users, tiny_artifact):
    """The tiny model without a detector or contract (trained before them) in service."""
    from medai_site.registry.loader import clear_model_cache

    yield register_version(users, artifact_variant(tiny_artifact, detector=False))
    clear_model_cache()


@pytest.fixture
def mixed(users, chest_model, run_job):
    """Clinician A's patient with a chest PNG (in scope) and a head CT (refused by the gate)."""
    from diagnosis.models import Prediction
    from diagnosis.services import scan_upload
    from tests.diagnosis.files import chest_png, ct_head_dicom, upload
    from tests.platform.factories import patient_for

    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("chest.png", chest_png()), upload("IM0001", ct_head_dicom())],
    )
    run_job(outcome.job)
    by_name = {p.scan.original_name: p for p in Prediction.objects.all()}
    return patient, outcome, by_name["chest.png"], by_name["IM0001"]
