"""Patients: scoping in selectors, registration, and the import job on real trial data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medai_site.jobs.models import Job
from medai_site.patients.models import Patient, PatientImport
from medai_site.patients.selectors import patient_get, patient_list
from medai_site.patients.services import PatientExists, patient_create, patient_import_start
from medai_site.patients.sources import CsvRejected, RowError, csv_check_header, csv_rows
from tests.platform.factories import patient_for

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
    assert (
        not PatientImport.objects.exists()
        and not Job.objects.exclude(kind="registry.validate").exists()
    )


def test_csv_import_keeps_valid_rows_and_reports_bad_ones(users, run_job):
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
    assert "not a valid YYYY-MM-DD date (month must be in 1..12)" in rejected[4]
    assert "given name is empty" in rejected[5]
    assert "appears twice" in rejected[6]
    assert "in the future" in rejected[7] and "not one of female" in rejected[7]
    assert job.result["summary"] == "Imported 2 patients; 4 rows rejected."


def test_builtin_gbsg2_import_skips_existing_mrns_without_sharing(users, run_job):
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


# --- CSV import: bad cells get their own message (issue #12, defect 14) ---------------------

HOSTILE_CSV = (
    "mrn,given_name,family_name,birth_date,sex,hba1c,note\n"
    "N001,Good,Row,1970-01-01,F,6.1,ok\n"  # line 2
    "N002,Not,Anumber,1970-01-01,F,nan,x\n"  # line 3
    "N003,In,Finite,1970-01-01,F,-Infinity,x\n"  # line 4
    "N004,Over,Flow,1970-01-01,F,1e400,x\n"  # line 5
    "N005,Big,Integer,1970-01-01,F,12345678901234567890,x\n"  # line 6
    "N006,Arabic,Digits,1970-01-01,F,\u0661\u0662\u0663,x\n"  # line 7
    "N007,Wide,Digits,\uff12\uff10\uff12\uff10-01-01,F,\uff17,x\n"  # line 8
    "N008,First,Day,0001-01-01,F,5,x\n"  # line 9
    "N009,Last,Day,9999-12-31,F,5,x\n"  # line 10
    "N010,No,Feb30,2020-02-30,F,5,x\n"  # line 11
    "N011,Basic,Format,20200101,F,5,x\n"  # line 12
    "N012,Bell\x07Char,Name,1970-01-01,F,5,x\n"  # line 13
    "N013,Too,Many,1970-01-01,F,5,x,extra\n"  # line 14
    "N014,Still,Good,1980-05-05,male,1.5e3,\u0661\u0662 mm\n"  # line 15
).encode()


def test_csv_import_with_bad_numbers_and_dates_reports_each_cell_and_keeps_good_rows(
    users, run_job
):
    job = patient_import_start(
        user=users.clinician_a, source="csv", upload=HOSTILE_CSV, filename="h.csv"
    )
    job = run_job(job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert set(patient_list(user=users.clinician_a).values_list("mrn", flat=True)) == {
        "N001",
        "N014",
    }
    assert Patient.objects.get(mrn="N014").clinical_facts == {"hba1c": 1500, "note": "١٢ mm"}
    rejected = {row["line"]: row["message"] for row in job.result["rejected"]}
    assert set(rejected) == set(range(3, 15))
    assert "hba1c 'nan' is not a number" in rejected[3]
    assert "hba1c '-Infinity' is not a number" in rejected[4]
    assert "hba1c '1e400' is too large" in rejected[5]
    assert "hba1c '12345678901234567890' is too large to keep exactly" in rejected[6]
    assert "hba1c '١٢٣' is written with non-ASCII digits" in rejected[7]
    assert "birth_date '２０２０-01-01' is not YYYY-MM-DD" in rejected[8]
    assert "hba1c '７' is written with non-ASCII digits" in rejected[8]
    assert "more than 130 years ago" in rejected[9]
    assert "birth_date '9999-12-31' is in the future" in rejected[10]
    assert "birth_date '2020-02-30' is not a valid YYYY-MM-DD date" in rejected[11]
    assert "birth_date '20200101' is not YYYY-MM-DD" in rejected[12]
    assert "given_name contains a control character (U+0007)" in rejected[13]
    assert "the row has 8 cells but the header has 7 columns" in rejected[14]
    assert job.result["summary"] == "Imported 2 patients; 12 rows rejected."


def test_csv_import_reports_a_nul_byte_past_the_sniffed_start_as_a_row_error(users, run_job):
    # The upload check looks for binary data in the first 4 KB only; PostgreSQL cannot store
    # NUL, so a later one must still be a row error, not a failed import.
    header = b"mrn,given_name,family_name,birth_date,sex,note\n"
    filler = b"".join(b"F%04d,Fill,Er,1970-01-01,F,x\n" % i for i in range(200))
    content = header + filler + b"Z1,A,B,1970-01-01,F,a\x00b\n"
    job = run_job(patient_import_start(user=users.clinician_a, source="csv", upload=content))
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["imported"] == 200
    assert job.result["rejected"] == [
        {"line": 202, "message": "note contains a control character (U+0000)"}
    ]


def test_csv_that_the_csv_reader_refuses_part_way_is_refused_on_the_form(users, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = (
        b"mrn,given_name,family_name,birth_date,sex,note\n"
        b"M1,A,B,1970-01-01,F,ok\n" + b'M2,A,B,1970-01-01,F,"' + b"x" * 200_000 + b'"\n'
    )
    with pytest.raises(CsvRejected, match="Line 3 of the file cannot be read as CSV"):
        csv_check_header(content)
    upload = SimpleUploadedFile("p.csv", content, content_type="text/csv")
    response = client_for(users.clinician_a).post(
        "/patients/import/", {"source": "csv", "file": upload}
    )
    assert response.status_code == 400
    assert "cannot be read as CSV" in response.content.decode()
    assert (
        not PatientImport.objects.exists()
        and not Job.objects.exclude(kind="registry.validate").exists()
    )


def test_a_cell_over_the_limit_is_refused_whatever_the_process_csv_limit():
    # scipy's ARFF reader (loading the GBSG2 trial) raises the csv module's process-wide
    # field limit; the patient import keeps its own.
    import csv
    import sys

    content = (
        b"mrn,given_name,family_name,birth_date,sex,note\n"
        b"M1,A,B,1970-01-01,F,ok\n" + b'M2,A,B,1970-01-01,F,"' + b"x" * 200_000 + b'"\n'
    )
    before = csv.field_size_limit(sys.maxsize)
    try:
        with pytest.raises(CsvRejected, match="Line 3 of the file cannot be read as CSV"):
            csv_check_header(content)
        rows = list(csv_rows(content))
    finally:
        csv.field_size_limit(before)
    assert isinstance(rows[-1], RowError) and rows[-1].line == 3
    assert "longer than 131072 characters" in rows[-1].message


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_fact_cell_is_stored_faithfully_or_refused_with_its_column(value):
    import json
    import math

    from medai_site.patients.sources import CellRejected, fact_value

    try:
        kept = fact_value("lab", value)
    except CellRejected as exc:
        assert str(exc).startswith("lab ")  # noqa: PT017 (either outcome of any input is fine)
        return
    # What is kept is valid JSON for PostgreSQL's jsonb (no NaN/Infinity, no NUL) ...
    json.dumps(kept, allow_nan=False)
    assert "\x00" not in str(kept)
    # ... and a number only where the cell wrote that number in ASCII.
    if isinstance(kept, int | float):
        assert value.isascii() and math.isclose(kept, float(value))
    else:
        assert kept == value


def test_patient_page_scopes_to_the_care_team_and_audits_the_view(users, rf):
    from medai_site.audit.exceptions import ObjectNotVisible
    from medai_site.audit.models import AuditEvent
    from medai_site.patients.pages import patient_page

    mine = patient_for(users.clinician_a, family_name="Mine")
    theirs = patient_for(users.clinician_b, family_name="Theirs")
    seen = []

    @patient_page("scans")
    def view(request, page, extra):
        seen.append((page.patient, extra))
        page.viewed()
        return "page"

    request = rf.get("/somewhere/")
    request.user = users.clinician_a
    assert view(request, patient_pk=mine.pk, extra=7) == "page"
    assert seen == [(mine, 7)]
    event = AuditEvent.objects.get(action=AuditEvent.Action.PATIENT_VIEWED)
    assert (event.patient_id, event.object_id, event.detail) == (
        mine.pk,
        str(mine.pk),
        {"page": "scans"},
    )
    with pytest.raises(ObjectNotVisible, match="No such patient in your care teams."):
        view(request, patient_pk=theirs.pk, extra=7)
    assert len(seen) == 1
