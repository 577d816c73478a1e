"""Patients: scoping in selectors, registration, and the import job on real trial data."""

from __future__ import annotations

import pytest

from medai_site.jobs.models import Job
from medai_site.jobs.runtime import job_execute
from medai_site.patients.models import Patient, PatientImport
from medai_site.patients.selectors import patient_get, patient_list
from medai_site.patients.services import PatientExists, patient_create, patient_import_start
from medai_site.patients.sources import CsvRejected, csv_check_header
from tests.factories import patient_for

pytestmark = pytest.mark.django_db

GOOD_CSV = (
    b"mrn,given_name,family_name,birth_date,sex,hba1c\n"
    b"H001,Ada,Lovelace,1970-12-10,F,6.1\n"
    b"H002,Alan,Turing,1962-06-23,male,\n"
    b"H003,Bad,Date,1970-13-01,F,\n"
    b"H004,,Noname,1980-01-01,F,\n"
    b"H001,Dup,Licate,1970-01-01,F,\n"
    b"H005,Future,Born,2999-01-01,x,\n"
)


def run_job(job: Job) -> Job:
    from medai_site.jobs.kinds import get_kind

    job_execute(job_id=job.pk, fn=get_kind(job.kind).task.job_function)
    job.refresh_from_db()
    return job


def test_clinician_sees_only_own_patients(users):
    mine = patient_for(users.clinician_a, family_name="Mine")
    patient_for(users.clinician_b, family_name="Theirs")
    assert list(patient_list(user=users.clinician_a)) == [mine]
    assert list(patient_list(user=users.researcher)) == []
    with pytest.raises(Patient.DoesNotExist):
        patient_get(user=users.clinician_b, pk=mine.pk)


def test_search_by_mrn_and_name(users):
    p1 = patient_for(users.clinician_a, family_name="Okafor", given_name="Ngozi", mrn="X1")
    patient_for(users.clinician_a, family_name="Smith", given_name="Jo", mrn="X2")
    assert list(patient_list(user=users.clinician_a, query="okaf")) == [p1]
    assert list(patient_list(user=users.clinician_a, query="ngozi okafor")) == [p1]
    assert list(patient_list(user=users.clinician_a, query="X1")) == [p1]


def test_duplicate_mrn_is_refused_not_shared(users):
    patient_for(users.clinician_a, mrn="DUP1")
    with pytest.raises(PatientExists, match="already registered"):
        patient_create(
            mrn="DUP1",
            given_name="A",
            family_name="B",
            birth_date="1970-01-01",
            sex="female",
            created_by=users.clinician_b,
        )
    assert list(patient_list(user=users.clinician_b)) == []


def test_register_patient_view_validates(users, client_for):
    client = client_for(users.clinician_a)
    response = client.post(
        "/patients/new/",
        {
            "mrn": "",
            "given_name": "A",
            "family_name": "B",
            "birth_date": "2999-01-01",
            "sex": "female",
        },
    )
    assert response.status_code == 400
    assert "The birth date is in the future." in response.content.decode()
    response = client.post(
        "/patients/new/",
        {
            "mrn": "N1",
            "given_name": "A",
            "family_name": "B",
            "birth_date": "1990-01-01",
            "sex": "female",
        },
    )
    assert response.status_code == 302
    assert Patient.objects.get(mrn="N1").memberships.get().user == users.clinician_a


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"mrn,given_name\nx,y\n", "missing the column(s) family_name, birth_date, sex"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text CSV"),
        ("mrn,given_name,family_name,birth_date,sex\n".encode("utf-16"), "binary data"),
        (b"mrn,mrn,given_name,family_name,birth_date,sex\n", "names a column twice"),
    ],
)
def test_csv_header_rejections(content, message):
    with pytest.raises(CsvRejected, match=message.replace("(", r"\(").replace(")", r"\)")):
        csv_check_header(content)


def test_import_view_rejects_bad_csv_with_400_and_writes_nothing(users, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(users.clinician_a)
    upload = SimpleUploadedFile("p.csv", b"name,dob\nx,y\n", content_type="text/csv")
    response = client.post("/patients/import/", {"source": "csv", "file": upload})
    assert response.status_code == 400
    assert "missing the column(s)" in response.content.decode()
    assert not PatientImport.objects.exists() and not Job.objects.exists()


def test_csv_import_keeps_valid_rows_and_reports_bad_ones(users):
    job = patient_import_start(
        user=users.clinician_a, source="csv", upload=GOOD_CSV, filename="ward.csv"
    )
    job = run_job(job)
    assert job.status == Job.Status.SUCCEEDED
    assert set(patient_list(user=users.clinician_a).values_list("mrn", flat=True)) == {
        "H001",
        "H002",
    }
    ada = Patient.objects.get(mrn="H001")
    assert ada.clinical_facts == {"hba1c": 6.1} and ada.sex == "female"
    rejected = {row["line"]: row["message"] for row in job.result["rejected"]}
    assert "not YYYY-MM-DD" in rejected[4]
    assert "given name is empty" in rejected[5]
    assert "appears twice" in rejected[6]
    assert "in the future" in rejected[7] and "not one of female" in rejected[7]
    assert job.result["summary"] == "Imported 2 patients; 4 rows rejected."


def test_builtin_gbsg2_import_skips_existing_mrns_without_sharing(users):
    run_job(patient_import_start(user=users.clinician_a, source="gbsg2", limit=30))
    job = run_job(patient_import_start(user=users.clinician_b, source="gbsg2"))
    assert job.result["imported"] == 686 - 30 and job.result["skipped"] == 30
    assert patient_list(user=users.clinician_a).count() == 30
    assert patient_list(user=users.clinician_b).count() == 656
    patient = Patient.objects.get(mrn="GBSG2-0001")
    # The first trial row: hormone therapy no, age 70, 21 mm tumour, 3 positive nodes.
    assert patient.clinical_facts["horTh"] == "no"
    assert patient.clinical_facts["age_at_baseline"] == 70
    assert patient.clinical_facts["tsize"] == 21 and patient.clinical_facts["pnodes"] == 3
    assert patient.sex == "female" and "synthetic name" in patient.source


def test_patient_page_shows_timeline(users, client_for):
    patient = patient_for(users.clinician_a)
    page = client_for(users.clinician_a).get(f"/patients/{patient.pk}/").content.decode()
    assert "Registered in MedAI" in page and patient.mrn in page
