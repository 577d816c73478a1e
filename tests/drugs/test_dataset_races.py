"""Check-then-insert races on data-set names: the unique name decides, and the loser gets a
message (a 400 on the form), never an IntegrityError 500 or an orphan file."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from django.urls import reverse

from drugs import services
from drugs.models import MoleculeDataset
from tests.support.clients import login

pytestmark = pytest.mark.django_db

SMILES_FILE = b"CCO ethanol\nc1ccccc1O phenol\n"


def _competitor_inserts_during_the_check(user):
    """dataset_check_upload runs between the name check and the insert: the competing upload
    commits its row there."""
    real = services.dataset_check_upload

    def racing(**kwargs):
        MoleculeDataset.objects.create(name="mine", created_by=user)
        return real(**kwargs)

    return mock.patch.object(services, "dataset_check_upload", side_effect=racing)


def test_a_name_taken_meanwhile_is_refused_without_an_orphan_file(users, settings):
    with _competitor_inserts_during_the_check(users.researcher):
        with pytest.raises(services.DatasetRejected, match="already exists") as caught:
            services.dataset_upload(
                name="mine", data=SMILES_FILE, filename="mine.smi", user=users.researcher
            )
    assert caught.value.field == "name"
    assert MoleculeDataset.objects.filter(name="mine").count() == 1
    stored = [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    assert stored == []


def test_the_upload_form_answers_400_when_the_name_is_taken_meanwhile(users):
    from django.core.files.uploadedfile import SimpleUploadedFile

    with _competitor_inserts_during_the_check(users.researcher):
        response = login(users.researcher).post(
            reverse("drugs:dataset_create"),
            {"name": "mine", "file": SimpleUploadedFile("mine.smi", SMILES_FILE)},
        )
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
