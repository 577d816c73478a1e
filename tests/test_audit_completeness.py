"""Every page that shows patient data writes its audit event, and every refused object too.

Each URL name of the authorization matrix is classified below: patient-bound (with the role
that may open it and the event the request must write) or not (with the reason). A new URL
added to the matrix without a classification fails ``test_every_matrix_url_is_classified``,
so the audit trail cannot silently fall behind the pages.
"""

from __future__ import annotations

import pytest

from medai_site.audit import chain
from medai_site.audit.models import AuditEvent
from tests.test_authorization_matrix import ADMIN_OPEN, MATRIX, all_patterns, url_for

A = AuditEvent.Action

# URL name -> (role that may open it, expected action, the world attribute of the event's
# patient or None for list pages, which name the patients they show in ``detail``).
PATIENT_BOUND: dict[str, tuple[str, str, str | None]] = {
    "home": ("clinician_a", A.PATIENT_LIST_VIEWED, None),
    "patients:list": ("clinician_a", A.PATIENT_LIST_VIEWED, None),
    "patients:detail": ("clinician_a", A.PATIENT_VIEWED, "patient"),
    "jobs:list": ("clinician_a", A.RECORD_VIEWED, None),
    "jobs:detail": ("clinician_a", A.RECORD_VIEWED, "patient"),
    "jobs:status": ("clinician_a", A.RECORD_VIEWED, "patient"),
    "diagnosis:patient_scans": ("clinician_a", A.PATIENT_VIEWED, "patient"),
    "diagnosis:scan_detail": ("clinician_a", A.RECORD_VIEWED, "patient"),
    "diagnosis:scan_frame": ("clinician_a", A.RECORD_VIEWED, "patient"),
    "diagnosis:scan_hold": ("clinician_a", A.RECORD_VIEWED, "patient"),
    "diagnosis:worklist": ("clinician_a", A.PATIENT_LIST_VIEWED, None),
    # Results leaving MedAI as DICOM (SR, heat-map capture) and FHIR are exports.
    "diagnosis:prediction_sr": ("clinician_a", A.EXPORTED, "patient"),
    "diagnosis:prediction_sc": ("clinician_a", A.EXPORTED, "patient"),
    "diagnosis:scan_fhir": ("clinician_a", A.EXPORTED, "patient"),
    "diagnosis:patient_fhir": ("clinician_a", A.EXPORTED, "patient"),
    # The inbox shows the identifiers a sender put in studies that match no patient yet.
    "diagnosis:inbox": ("clinician_a", A.PATIENT_LIST_VIEWED, None),
    "diagnosis:inbox_assign": ("clinician_a", A.RECORD_VIEWED, None),
    "treatment:patient_options": ("clinician_a", A.PATIENT_VIEWED, "patient"),
    "treatment:assessment": ("clinician_a", A.RECORD_VIEWED, "patient"),
    "treatment:patient_fhir": ("clinician_a", A.EXPORTED, "patient"),
    "remote_care:patient_monitoring": ("clinician_a", A.PATIENT_VIEWED, "patient"),
    "remote_care:board": ("clinician_a", A.PATIENT_LIST_VIEWED, None),
    "remote_care:board_rows": ("clinician_a", A.PATIENT_LIST_VIEWED, None),
    "remote_care:vitals": ("clinician_a", A.PATIENT_VIEWED, "patient"),
    "remote_care:vitals_data": ("clinician_a", A.PATIENT_VIEWED, "patient"),
    "remote_care:patient_fhir_export": ("clinician_a", A.EXPORTED, "patient"),
    "remote_care:risk_fhir": ("clinician_a", A.EXPORTED, "patient"),
    "remote_care:inbox": ("clinician_a", A.PATIENT_LIST_VIEWED, None),
    "remote_care:thread": ("clinician_a", A.PATIENT_VIEWED, "patient"),
    "remote_care:thread_new": ("clinician_a", A.PATIENT_VIEWED, "patient"),
    "remote_care:message_photo": ("clinician_a", A.RECORD_VIEWED, "patient"),
    "portal:home": ("patient", A.PATIENT_VIEWED, "patient"),
    "portal:messages": ("patient", A.PATIENT_VIEWED, "patient"),
    "portal:thread": ("patient", A.PATIENT_VIEWED, "patient"),
    "portal:photo": ("patient", A.PATIENT_VIEWED, "patient"),
}

# URL name -> why it shows no patient-bound data (or is audited by another test).
NOT_PATIENT_BOUND: dict[str, str] = {
    "two_factor_verify": "the staff second-factor step (the sign-in itself is audited)",
    "two_factor_enrol": "enrolling an authenticator (audited by the service)",
    "two_factor_recovery_codes": "recovery codes of one's own account (audited by the service)",
    "healthz": "liveness only",
    "login": "sign-in form (its outcome is audited by the auth signals)",
    "logout": "sign-out (audited by the auth signals)",
    "patients:create": "empty form; the created patient is audited by patient_create",
    "patients:import": "empty form; the import is audited by patient_import_start",
    "jobs:cancel": "POST action; job_cancel audits the cancellation",
    "jobs:fleet": "workers, queues and jobs by kind only (no patient identifiers)",
    "jobs:fleet_drain": "POST action; worker_drain audits it",
    "jobs:fleet_cancel": "POST action; job_cancel audits the cancellation",
    "jobs:fleet_requeue": "POST action; job_requeue audits it",
    "registry:governance": "a model version's release record; no patient data",
    "registry:validate": "POST action on a model version; audited as a validation request",
    "registry:approve": "POST action on a model version; model_version_approve audits it",
    "registry:activate": "POST action on a model version; model_version_activate audits it",
    "registry:rollback": "POST action on a task's model; model_version_rollback audits it",
    "diagnosis:scan_review": "POST action; the review service audits the change",
    "diagnosis:send_again": "POST action; dicom_send_again audits it as an export",
    "diagnosis:scan_override": "POST action; prediction_override audits the score-anyway "
    "(a refused form re-renders the viewer, audited as a view of the scan)",
    "diagnosis:monitoring": "per-model agreement aggregates, no patient identifiers",
    "registry:shadow_list": "shadow versions and their agreement counts, no patient data",
    "registry:shadow_dashboard": "a shadow version's agreement aggregates, no patient data",
    "registry:shadow_start": "POST action; model_version_shadow_start audits it",
    "registry:shadow_stop": "POST action; model_version_shadow_stop audits it",
    "diagnosis:inbox_unclaimed": "hospital IT (superusers) only, 403 for every role here; "
    "its list event is asserted in tests/diagnosis/pacs/test_unclaimed.py",
    "diagnosis:inbox_discard": "hospital IT's POST action; unmatched_study_discard audits it "
    "(tests/diagnosis/pacs/test_unclaimed.py)",
    "diagnosis:training": "model training (no patients)",
    "diagnosis:training_job": "a training job (no patients)",
    "diagnosis:dataset_create": "data set registration (public data)",
    "diagnosis:dataset_upload": "POST action for model admins: a training data set upload",
    "diagnosis:dataset_from_reviews": "POST action for model admins (de-identified)",
    "treatment:plan_create": "POST action; plan_record audits the plan",
    "treatment:training": "model training on public trials",
    "treatment:cohort": "public trial cohorts",
    "treatment:cohort_detail": "public trial cohorts",
    "treatment:cohort_genomics": "public cohort analysis (POST)",
    "drugs:home": "drug design (no patients)",
    "drugs:dataset_create": "drug design (no patients)",
    "drugs:dataset_detail": "drug design (no patients)",
    "drugs:run_create": "drug design (no patients)",
    "drugs:run_detail": "drug design (no patients)",
    "drugs:run_live": "drug design (no patients)",
    "drugs:run_molecules": "drug design (no patients)",
    "drugs:run_export": "drug design (no patients)",
    "drugs:run_sample": "drug design (no patients)",
    "drugs:molecule_detail": "drug design (no patients)",
    "drugs:shortlist_save": "drug design (no patients)",
    "drugs:shortlist_remove": "drug design (no patients)",
    "drugs:shortlist": "drug design (no patients)",
    "drugs:predictors": "drug design (no patients)",
    "drugs:structure": "drug design (no patients)",
    "remote_care:api_observations": "device API (token, writes only)",
    "remote_care:api_fhir_bundle": "device API (token, writes only)",
    "remote_care:api_waveforms": "device API (token, writes only)",
    "dicomweb:stow": "DICOMweb STOW-RS (sender token, writes only; stow_store audits it)",
    "dicomweb:stow_study": "DICOMweb STOW-RS (sender token, writes only; stow_store audits it)",
    "remote_care:device_revoke": "POST action; device_revoke audits it",
    "remote_care:alert_action": "POST action; the alert services audit it",
    "remote_care:message_photo_to_scan": "POST action; the scan upload audits it",
    "remote_care:portal_access": "POST action; portal_account_create audits it",
    "remote_care:analytics": "population aggregates (audited as such, no patient rows)",
    "remote_care:analytics_export": "population aggregates (audited as such, no patient rows)",
    "remote_care:api_schema": "API description",
    "remote_care:api_docs": "API description",
    "remote_care:risk_models": "model training on public data",
    "remote_care:risk_model_facts": "model facts card",
    "remote_care:progression": "public cohorts",
    "remote_care:progression_detail": "public cohorts",
    "portal:activate": "set-password form (no record shown)",
    "portal:thread_new": "the patient's own empty message form; sending audits the message",
}
# The Django admin (its Jobs pages, care-team and role changes, querysets) is audited and
# tested on the admin's own branch of the work; its URLs are left out here.
ADMIN_COVERED_ELSEWHERE = "admin:"


def _events():
    return list(
        AuditEvent.objects.order_by("id").values_list(
            "action", "patient_id", "outcome", "actor_username"
        )
    )


@pytest.mark.django_db
def test_every_matrix_url_is_classified(world):
    names = {name for name, _, _ in all_patterns() if name} | set(MATRIX)
    names = {n for n in names if not n.startswith(ADMIN_COVERED_ELSEWHERE)}
    unclassified = sorted(names - set(PATIENT_BOUND) - set(NOT_PATIENT_BOUND))
    assert not unclassified, f"Classify as patient-bound or not (audit): {unclassified}"
    assert not set(PATIENT_BOUND) & set(NOT_PATIENT_BOUND)
    stale = sorted((set(PATIENT_BOUND) | set(NOT_PATIENT_BOUND)) - names)
    assert not stale, f"Classified URL names that no longer exist: {stale}"


@pytest.mark.django_db
def test_every_patient_bound_page_writes_its_audit_event(world):
    routes = {name: route for name, route, _ in all_patterns() if name}
    failures = []
    for name, (role, action, patient_attr) in PATIENT_BOUND.items():
        assert MATRIX[name][role] == "ok", f"{role} may not open {name}"
        url = url_for(name, routes[name], world)
        client = world.client_for(role)  # signing in writes its own event first
        before = AuditEvent.objects.count()
        response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        new = _events()[before:]
        expected_patient = getattr(world, patient_attr).pk if patient_attr else None
        expected = [(action, expected_patient, "success")]
        got = [(a, p, o) for a, p, o, _ in new]
        if got != expected:
            failures.append(f"{name} as {role}: expected {expected}, got {got}")
    assert not failures, "\n".join(failures)
    assert chain.chain_verify(
        AuditEvent.objects.order_by("sequence").values(*chain.CHAIN_FIELDS)
    ).ok


@pytest.mark.django_db
def test_list_pages_name_the_patients_they_show(world):
    routes = {name: route for name, route, _ in all_patterns() if name}
    for name in ("home", "jobs:list"):
        world.client_for("clinician_a").get(url_for(name, routes[name], world))
    home, jobs = AuditEvent.objects.filter(path__in=["/", "/jobs/"]).order_by("id")
    assert home.detail["shown"] == [world.patient.pk] and home.detail["jobs"] == [world.job.pk]
    assert jobs.detail["shown"] == [world.job.pk]
    assert jobs.detail["patients"] == [world.patient.pk]


@pytest.mark.django_db
def test_job_status_polls_write_one_event_per_session(world):
    def job_views() -> int:
        return AuditEvent.objects.filter(
            object_type="jobs.Job", object_id=str(world.job.pk), action="record_viewed"
        ).count()

    client = world.client_for("clinician_a")
    for _ in range(5):
        assert client.get(f"/jobs/{world.job.pk}/status/").status_code == 200
    assert job_views() == 1
    # Opening the job's page is a view of its own; polls after it add nothing.
    client.get(f"/jobs/{world.job.pk}/")
    client.get(f"/jobs/{world.job.pk}/status/")
    assert job_views() == 2
    # Another session (another user, or a new sign-in) is audited again.
    world.client_for("clinician_a").get(f"/jobs/{world.job.pk}/status/")
    assert job_views() == 3


WAITING_FOR_A_PATIENT = {"diagnosis:inbox_assign"}


@pytest.mark.django_db
def test_every_refused_object_writes_an_access_denied_event(world):
    """Every matrix cell answered 404 (another care team's object) is audited as denied,
    naming the user and the patient the object belongs to."""
    routes = {name: route for name, route, _ in all_patterns() if name}
    failures, checked = [], 0
    for name, expected_row in MATRIX.items():
        if name in ADMIN_OPEN:
            continue
        for role, outcome in expected_row.items():
            if outcome != "not_found":
                continue
            url = url_for(name, routes[name], world)
            client = world.client_for(role)
            before = AuditEvent.objects.count()
            if expected_row["method"] == "POST":
                response = client.post(url)
            else:
                response = client.get(url)
            assert response.status_code == 404, (name, role)
            checked += 1
            got = _events()[before:]
            # A study waiting in the inbox belongs to no patient yet.
            patient = None if name in WAITING_FOR_A_PATIENT else world.patient.pk
            expected = [("access_denied", patient, "denied", _username(role))]
            if got != expected:
                failures.append(f"{name} as {role}: expected {expected}, got {got}")
    assert checked > 20
    assert not failures, "\n".join(failures)


def _username(role: str) -> str:
    return {"clinician_b": "clin_b", "researcher": "research", "model_admin": "madmin"}[role]


@pytest.mark.django_db
def test_a_missing_object_is_audited_as_denied_without_a_patient(world):
    client = world.client_for("clinician_b")
    before = AuditEvent.objects.count()
    assert client.get("/patients/999999999/").status_code == 404
    event = AuditEvent.objects.order_by("id")[before]
    assert (event.action, event.outcome, event.patient_id) == ("access_denied", "denied", None)
    assert event.detail["exists"] is False and event.detail["object"] == "patients.Patient"
    # An id beyond any database integer is refused as well, still with a 404 and an event.
    huge = "9" * 40
    assert client.get(f"/patients/{huge}/").status_code == 404
    assert AuditEvent.objects.filter(action="access_denied").count() == 2
