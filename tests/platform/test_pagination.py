"""Long lists a page at a time: the shared helper (page_of) and the pages that use it show
their counts, keep their filters in the page links, and never fail on a bad ?page=."""

from __future__ import annotations

import re

import pytest
from django.test import RequestFactory

from medai_site.audit.models import AuditEvent
from medai_site.core.pagination import page_number, page_of
from medai_site.jobs.models import Job
from tests.diagnosis.factories import PredictionFactory, ScanFactory, ScanUploadFactory
from tests.platform.factories import JobFactory, patient_for

BAD_PAGES = ["0", "-1", "abc", str(10**30), "999", "²", "１", "1.5", "", " 2 "]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 1),
        ("", 1),
        ("2", 2),
        (" 2 ", 2),
        ("0", 1),
        ("-1", 1),
        ("abc", 1),
        ("²", 1),
        ("１", 1),
        ("1e3", 1),
        (str(10**30), 3),
        ("9" * 500, 3),
        ("999", 3),
    ],
)
def test_page_number_clamps_to_the_pages_that_exist(raw, expected):
    assert page_number(raw, num_pages=3) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 3), ("", 3), ("abc", 3), ("2", 2), ("0", 1), ("999", 3)]
)
def test_a_list_that_starts_on_its_last_page(raw, expected):
    assert page_number(raw, num_pages=3, start="last") == expected


def test_page_of_counts_and_keeps_filters():
    request = RequestFactory().get("/x/", {"status": "failed", "q": "a b", "page": "2"})
    pager = page_of(request, list(range(243)), per_page=50, noun="scan")
    assert pager.object_list == list(range(50, 100))
    assert pager.summary == "Showing 51–100 of 243 scans"
    assert pager.next_link == "?status=failed&q=a+b&page=3"
    assert pager.previous_link == "?status=failed&q=a+b&page=1"
    assert pager.last_link.endswith("page=5")
    one = page_of(RequestFactory().get("/x/"), [1], per_page=50, noun="scan")
    assert one.summary == "1 scan" and not one.page.has_other_pages()
    none = page_of(RequestFactory().get("/x/"), [], per_page=50, noun="scan")
    assert none.summary == "No scans" and none.object_list == []


@pytest.mark.django_db
def test_job_list_is_paginated_with_counts_and_filters(users, client_for):
    for n in range(55):
        JobFactory(title=f"job-{n:02d}", owner=users.researcher, status=Job.Status.FAILED)
    JobFactory(title="queued-one", owner=users.researcher)
    client = client_for(users.researcher)
    first = client.get("/jobs/?status=failed").content.decode()
    assert "Showing 1–50 of 55 jobs" in first
    assert "queued-one" not in first
    assert 'href="?status=failed&amp;page=2"' in first
    second = client.get("/jobs/?status=failed&page=2").content.decode()
    assert "Showing 51–55 of 55 jobs" in second
    titles_1 = set(re.findall(r"job-\d\d", first))
    titles_2 = set(re.findall(r"job-\d\d", second))
    assert len(titles_1) == 50 and len(titles_2) == 5 and not titles_1 & titles_2
    for bad in BAD_PAGES:
        response = client.get("/jobs/", {"status": "failed", "page": bad})
        assert response.status_code == 200, bad
        assert "of 55 jobs" in response.content.decode()
    last = client.get("/jobs/?status=failed&page=999").content.decode()
    assert "Showing 51–55 of 55 jobs" in last


@pytest.mark.django_db
def test_worklist_and_scan_list_are_paginated_and_audited_per_view(users, client_for):
    patient = patient_for(users.clinician_a)
    upload = ScanUploadFactory(patient=patient, uploaded_by=users.clinician_a)
    for n in range(53):
        PredictionFactory(scan=ScanFactory(upload=upload), risk=n / 100)
    client = client_for(users.clinician_a)
    before = AuditEvent.objects.filter(action=AuditEvent.Action.PATIENT_LIST_VIEWED).count()
    html = client.get("/diagnosis/worklist/").content.decode()
    assert "Showing 1–50 of 53 scans" in html
    assert "0.52" in html and "0.01" not in html  # highest risk first, the rest on page 2
    page2 = client.get("/diagnosis/worklist/?status=awaiting&page=2").content.decode()
    assert "Showing 51–53 of 53 scans" in page2 and "0.01" in page2
    assert 'href="?status=awaiting&amp;page=1"' in page2
    events = AuditEvent.objects.filter(action=AuditEvent.Action.PATIENT_LIST_VIEWED)
    assert events.count() == before + 2
    assert len(events.order_by("-pk").first().detail["shown"]) == 3
    for bad in BAD_PAGES:
        assert client.get("/diagnosis/worklist/", {"page": bad}).status_code == 200, bad
    scans = client.get(f"/diagnosis/patients/{patient.pk}/scans/").content.decode()
    assert "Showing 1–50 of 53 scans" in scans
    scans2 = client.get(f"/diagnosis/patients/{patient.pk}/scans/?page=2").content.decode()
    assert "Showing 51–53 of 53 scans" in scans2
    for bad in BAD_PAGES:
        response = client.get(f"/diagnosis/patients/{patient.pk}/scans/", {"page": bad})
        assert response.status_code == 200, bad


@pytest.mark.django_db
def test_messages_inbox_is_paginated_and_keeps_the_unread_filter(users, client_for):
    from remote_care.messaging.services import thread_start

    patient = patient_for(users.clinician_a)
    for n in range(51):
        thread_start(
            patient=patient,
            subject=f"subject-{n:02d}",
            started_by=users.clinician_a,
            from_patient=False,
            body="Hello",
        )
    client = client_for(users.clinician_a)
    first = client.get("/remote-care/messages/").content.decode()
    assert "Showing 1–50 of 51 conversations" in first
    second = client.get("/remote-care/messages/?page=2").content.decode()
    assert "Showing 51–51 of 51 conversations" in second
    assert len(set(re.findall(r"subject-\d\d", second))) == 1
    unread = client.get("/remote-care/messages/?unread=1&page=abc")
    assert unread.status_code == 200
    assert "No conversations" in unread.content.decode()  # none unread: one was sent by A


@pytest.mark.django_db
def test_design_runs_and_data_sets_page_independently(users, client_for, monkeypatch):
    """Two lists on one page, each with its own page parameter kept by the other's links."""
    from drugs import views as drug_views
    from tests.drugs.factories import DesignRunFactory, MoleculeDatasetFactory

    monkeypatch.setattr(drug_views, "PAGE_SIZE_RUNS", 4)
    monkeypatch.setattr(drug_views, "PAGE_SIZE_DATASETS", 2)
    dataset = MoleculeDatasetFactory(name="set-0")
    for n in range(1, 5):
        MoleculeDatasetFactory(name=f"set-{n}")
    for n in range(9):
        DesignRunFactory(name=f"run-{n}", dataset=dataset, created_by=users.researcher)
    client = client_for(users.researcher)
    home = client.get("/drugs/").content.decode()
    assert "Showing 1–4 of 9 design runs" in home and "Showing 1–2 of 5 data sets" in home
    assert set(re.findall(r"run-\d", home)) == {"run-8", "run-7", "run-6", "run-5"}
    assert 'href="?runs=2#runs"' in home and 'href="?datasets=2#datasets"' in home
    both = client.get("/drugs/", {"runs": "3", "datasets": "2"}).content.decode()
    assert "Showing 9–9 of 9 design runs" in both and "Showing 3–4 of 5 data sets" in both
    assert set(re.findall(r"run-\d", both)) == {"run-0"}
    assert set(re.findall(r"/\">(set-\d)</a>", both)) == {"set-2", "set-3"}
    assert 'href="?datasets=2&amp;runs=2#runs"' in both  # the data set page is kept
    for bad in BAD_PAGES:
        response = client.get("/drugs/", {"runs": bad, "datasets": bad})
        assert response.status_code == 200, bad
        assert "of 9 design runs" in response.content.decode()


@pytest.mark.django_db
def test_unmatched_studies_are_paginated_not_cut_off(users, client_for, monkeypatch):
    from diagnosis.models import UnmatchedStudy

    patient = patient_for(users.clinician_a)
    UnmatchedStudy.objects.bulk_create(
        UnmatchedStudy(
            reason=f"reason-{n:02d}",
            patient_id=patient.mrn,
            patient_name=f"{patient.family_name.upper()}^{patient.given_name}",
            modality="CT",
        )
        for n in range(53)
    )
    client = client_for(users.clinician_a)
    first = client.get("/diagnosis/inbox/").content.decode()
    assert (
        "Showing 1–50 of 53 studies" in first and len(re.findall(r"data-unmatched=", first)) == 50
    )
    last = client.get("/diagnosis/inbox/", {"page": "2"}).content.decode()
    assert "Showing 51–53 of 53 studies" in last and len(re.findall(r"data-unmatched=", last)) == 3
    event = AuditEvent.objects.filter(action=AuditEvent.Action.PATIENT_LIST_VIEWED)
    assert len(event.order_by("-pk").first().detail["shown"]) == 3
    for bad in BAD_PAGES:
        assert client.get("/diagnosis/inbox/", {"page": bad}).status_code == 200, bad


def _risk_versions(users):
    from remote_care.risk.services import RISK_TASK
    from tests.platform.factories import ModelVersionFactory

    for n in range(1, 6):
        ModelVersionFactory(task=RISK_TASK, version=n, metrics={"auroc": n / 10})
    return "/remote-care/risk-model/", [f">v{n}</a> <span" for n in (5, 4, 3, 2, 1)]


def _predictor_versions(users):
    from tests.platform.factories import ModelVersionFactory

    for n in range(1, 6):
        ModelVersionFactory(task="drugs.predictor.bbbp", version=n)
    return "/drugs/predictors/", [f"drugs.predictor.bbbp v{n}<" for n in (5, 4, 3, 2, 1)]


def _progression_analyses(users):
    from tests.remote_care.factories import ProgressionAnalysisFactory

    made = [ProgressionAnalysisFactory(created_by=users.researcher) for _ in range(5)]
    return "/remote-care/progression/", [f"/progression/{a.pk}/" for a in reversed(made)]


def _cohort_analyses(users):
    from tests.treatment.factories import CohortAnalysisFactory

    made = [CohortAnalysisFactory(created_by=users.researcher) for _ in range(5)]
    return "/treatment/cohort/", [f"/cohort/{a.pk}/" for a in reversed(made)]


def _dataset_runs(users):
    from tests.drugs.factories import DesignRunFactory, MoleculeDatasetFactory

    dataset = MoleculeDatasetFactory()
    made = [DesignRunFactory(dataset=dataset, created_by=users.researcher) for _ in range(5)]
    return f"/drugs/datasets/{dataset.pk}/", [f'/runs/{r.pk}/"' for r in reversed(made)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("make", "module", "size", "param", "who"),
    [
        (_risk_versions, "remote_care.risk.views", "VERSIONS_PER_PAGE", "versions", "model_admin"),
        (_predictor_versions, "drugs.views", "PAGE_SIZE_VERSIONS", "versions", "model_admin"),
        (
            _progression_analyses,
            "remote_care.progression.views",
            "ANALYSES_PER_PAGE",
            "page",
            "researcher",
        ),
        (_cohort_analyses, "treatment.views", "ANALYSES_PER_PAGE", "page", "researcher"),
        (_dataset_runs, "drugs.views", "PAGE_SIZE_RUNS", "page", "researcher"),
    ],
)
def test_versions_and_analyses_lists_are_paginated_newest_first(
    users, client_for, monkeypatch, make, module, size, param, who
):
    """Lists that were cut at their 20 or 30 newest rows: every row reachable a page at a
    time, newest first, the other query parameters kept, a bad page clamped."""
    import importlib

    monkeypatch.setattr(importlib.import_module(module), size, 2)
    url, rows = make(users)
    client = client_for(getattr(users, who))

    def shown(html: str) -> list[str]:
        return [row for row in rows if row in html]

    first = client.get(url, {"x": "kept"}).content.decode()
    assert "Showing 1–2 of 5" in first and shown(first) == rows[:2]
    assert f'href="?x=kept&amp;{param}=2' in first
    last = client.get(url, {param: "3"}).content.decode()
    assert "Showing 5–5 of 5" in last and shown(last) == rows[4:]
    for bad, expected in [("abc", rows[:2]), ("99", rows[4:]), ("0", rows[:2])]:
        response = client.get(url, {param: bad})
        assert response.status_code == 200, bad
        assert shown(response.content.decode()) == expected, bad
