from __future__ import annotations

import gzip

import pytest

from drugs.models import MoleculeDataset, ShortlistEntry
from drugs.selectors import dataset_smiles
from drugs.services import (
    MOSES_10K_NAME,
    DatasetRejected,
    dataset_builtin_ensure,
    dataset_upload,
    shortlist_remove,
    shortlist_save,
)
from tests.drugs.factories import GeneratedMoleculeFactory

SMILES_FILE = b"""CCO ethanol
c1ccccc1O phenol
C1CC(
CCO ethanol-again
not_a_smiles
CC(=O)Oc1ccccc1C(=O)O aspirin
"""


@pytest.mark.django_db
def test_upload_imports_valid_molecules_and_reports_invalid_lines_by_number(users, run_job):
    dataset = dataset_upload(
        name="mine", data=SMILES_FILE, filename="mine.smi", user=users.researcher
    )
    assert dataset.status == MoleculeDataset.Status.IMPORTING
    job = run_job(dataset.job)
    assert job.status == "succeeded", job.error
    dataset.refresh_from_db()
    assert dataset.status == MoleculeDataset.Status.READY
    assert dataset.n_molecules == 3  # ethanol twice counts once
    assert dataset.n_duplicates == 1
    assert dataset.n_invalid == 2
    assert [e["line"] for e in dataset.errors] == [3, 5]
    assert all(e["message"] for e in dataset.errors)
    assert sorted(dataset_smiles(dataset)) == sorted(["CCO", "Oc1ccccc1", "CC(=O)Oc1ccccc1C(=O)O"])
    assert "2 invalid line(s)" in job.result["summary"]


@pytest.mark.django_db
def test_csv_upload_keeps_numeric_columns(users, run_job):
    data = b"name,smiles,pIC50\na,CCO,5.1\nb,CCN,6.2\nc,xx,1\n"
    dataset = run_job(
        dataset_upload(name="csv", data=data, filename="a.csv", user=users.researcher).job
    )
    assert dataset.status == "succeeded"
    record = MoleculeDataset.objects.get(name="csv")
    assert record.value_columns == ["pIC50"]
    assert record.n_molecules == 2 and record.n_invalid == 1
    with record.file.open("rb") as raw, gzip.open(raw, "rt") as handle:
        assert handle.read().splitlines()[:2] == ["smiles,name,pIC50", "CCO,a,5.1"]


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "a.smi", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "scan.png", "binary file"),
        (b"CCO\n", "molecules.xlsx", "Unsupported file type"),
        (b"\x00\x01\x02binary", "a.smi", "binary"),
        (b"\xff\xfe\xfa not utf8", "a.smi", "UTF-8"),
        (b"hello world\nfoo bar\n", "a.smi", "No valid molecule"),
        (b"id,value\n1,2\n", "a.csv", "No SMILES column"),
        (b"not gzip", "a.smi.gz", "gzip"),
        (b"plain text, no molfile\n", "a.sdf", "SD file"),
    ],
)
@pytest.mark.django_db
def test_malformed_uploads_are_rejected_with_a_message(users, data, filename, message):
    with pytest.raises(DatasetRejected, match=message):
        dataset_upload(name="bad", data=data, filename=filename, user=users.researcher)
    assert not MoleculeDataset.objects.exists()


@pytest.mark.django_db
def test_upload_refuses_a_taken_name(users):
    dataset_upload(name="x", data=b"CCO\n", filename="a.smi", user=users.researcher)
    with pytest.raises(DatasetRejected, match="already exists") as caught:
        dataset_upload(name="x", data=b"CCO\n", filename="a.smi", user=users.researcher)
    assert caught.value.field == "name"


@pytest.mark.django_db
def test_large_upload_is_sniffed_from_its_start(users, settings):
    # A file bigger than the sniffed head: only the head is parsed in the request.
    data = b"CCOC\n" * 80_000
    dataset = dataset_upload(name="big", data=data, filename="big.smi", user=users.researcher)
    assert dataset.status == MoleculeDataset.Status.IMPORTING
    settings.DRUGS_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(DatasetRejected, match="larger than"):
        dataset_upload(name="big2", data=data, filename="big.smi", user=users.researcher)


@pytest.mark.django_db
def test_builtin_moses_subset_is_registered_once(users, moses_smiles):
    created = dataset_builtin_ensure(user=users.researcher)
    assert MOSES_10K_NAME in [d.name for d in created]
    assert dataset_builtin_ensure(user=users.researcher) == []
    dataset = MoleculeDataset.objects.get(name=MOSES_10K_NAME)
    # The authors' "10k" training subset holds 9,999 molecules.
    assert dataset.n_molecules == len(moses_smiles) == 9_999
    subset = dataset_smiles(dataset, limit=500, seed=1)
    assert len(subset) == 500 and set(subset) <= set(moses_smiles)
    assert subset == dataset_smiles(dataset, limit=500, seed=1)


@pytest.mark.django_db
def test_shortlist_save_updates_the_note_and_remove_deletes(users):
    molecule = GeneratedMoleculeFactory(run__created_by=users.researcher, smiles="CCO")
    shortlist_save(molecule=molecule, user=users.researcher, note=" first ")
    shortlist_save(molecule=molecule, user=users.researcher, note="second")
    entry = ShortlistEntry.objects.get()
    assert entry.note == "second"
    assert shortlist_remove(molecule=molecule, user=users.researcher)
    assert not shortlist_remove(molecule=molecule, user=users.researcher)
