"""Molecule data-set uploads against hostile files (gzip bombs above all) and a full disk:
a 4xx (or 507) with a specific message, and no data set row, job or file left behind."""

from __future__ import annotations

import gzip
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from drugs.models import MoleculeDataset
from medai_site.jobs.models import Job
from tests import hostile_files as hostile
from tests.support.clients import login

pytestmark = pytest.mark.django_db

SMILES = b"".join(b"C" * (i % 7 + 1) + b"O mol%d\n" % i for i in range(5000))


def _truncated_gzip() -> bytes:
    data = gzip.compress(SMILES)
    return data[: len(data) // 2]


HOSTILE_MOLECULE_FILES = [
    ("bomb.smi.gz", hostile.gzip_bomb, "expands to more than 512 MiB"),
    ("cut.smi.gz", _truncated_gzip, "incomplete gzip file"),
    ("fake.csv.gz", lambda: SMILES, "is not a valid gzip file"),
    ("hidden-gzip.smi", lambda: gzip.compress(SMILES), "gzip-compressed but not named .gz"),
    ("noise.smi", hostile.garbage, "binary file, not a molecule file"),
    ("image.sdf", hostile.png, "binary file, not a molecule file"),
    ("scan.csv", hostile.dicom, "binary file, not a molecule file"),
    ("page.smi", lambda: hostile.HTML, "No valid molecule was found"),
    ("run.smi", lambda: hostile.SCRIPT, "No valid molecule was found"),
    ("drawing.csv", lambda: hostile.SVG, "No SMILES column found"),
    ("cut.sdf", lambda: b"ethanol\n  RDKit\n\n  3  2  0  0", "does not look like an SD file"),
    ("empty.smi", lambda: b"", "empty"),
]


def _drug_files(settings) -> list[str]:
    return [f for f in hostile.files_under(settings.MEDIA_ROOT) if f.startswith("drugs")]


@pytest.mark.parametrize(
    ("name", "make", "message"),
    HOSTILE_MOLECULE_FILES,
    ids=[h[0] for h in HOSTILE_MOLECULE_FILES],
)
def test_hostile_molecule_file_is_refused_with_its_reason_and_leaves_nothing(
    users, settings, name, make, message
):
    response = login(users.researcher).post(
        reverse("drugs:dataset_create"),
        {"name": "hostile", "file": SimpleUploadedFile(name, make())},
    )
    assert response.status_code == 400
    assert message in unescape(response.content.decode())
    assert (
        not MoleculeDataset.objects.exists()
        and not Job.objects.exclude(kind="registry.validate").exists()
    )
    assert _drug_files(settings) == []


def test_a_gzipped_file_within_the_bound_is_accepted(users, settings):
    response = login(users.researcher).post(
        reverse("drugs:dataset_create"),
        {"name": "ok", "file": SimpleUploadedFile("ok.smi.gz", gzip.compress(SMILES))},
    )
    assert response.status_code == 302
    assert MoleculeDataset.objects.get().name == "ok"


def test_full_disk_answers_507_and_leaves_no_row_and_no_partial_file(users, settings, monkeypatch):
    hostile.disk_full_save(monkeypatch)
    response = login(users.researcher).post(
        reverse("drugs:dataset_create"),
        {"name": "full", "file": SimpleUploadedFile("ok.smi", SMILES)},
    )
    assert response.status_code == 507
    assert "storage is full" in unescape(response.content.decode())
    assert (
        not MoleculeDataset.objects.exists()
        and not Job.objects.exclude(kind="registry.validate").exists()
    )
    assert _drug_files(settings) == []
