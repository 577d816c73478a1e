"""Every URL pattern of the project x every role -> the expected outcome.

A URL pattern without a row here fails the test: each new feature adds its rows. Outcomes:
"ok" 200; "login" a redirect to the sign-in page; "redirect" any other 302; "forbidden" 403;
"not_found" 404 (used for other people's objects, so their existence is not revealed);
"admin_login" a redirect to the admin's sign-in page (signed-in users without staff status).
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

ROLES = ("anonymous", "clinician_a", "clinician_b", "researcher", "model_admin", "patient")


def row(anonymous, clinician_a, clinician_b, researcher, model_admin, method="GET", patient=None):
    """``patient`` is the portal user of clinician A's patient. Left out, it follows the portal
    boundary: everything outside the portal is refused (403), the device API included (a
    device signs in with its token, never with a patient's session)."""
    if patient is None:
        patient = "forbidden"
    return {
        "method": method,
        **dict(zip(ROLES, (anonymous, clinician_a, clinician_b, researcher, model_admin, patient))),
    }


# Objects in kwargs belong to clinician A (see the fixture below).
MATRIX: dict[str, dict[str, str]] = {
    # The site root sends a patient to the portal.
    "home": row("login", "ok", "ok", "ok", "ok", patient="redirect"),
    "healthz": row("ok", "ok", "ok", "ok", "ok", patient="ok"),
    "login": row("ok", "redirect", "redirect", "redirect", "redirect", patient="redirect"),
    "logout": row("login", "login", "login", "login", "login", method="POST", patient="login"),
    # Two-factor pages are for users who need a second factor (model admins here; clinicians
    # too with MEDAI_2FA_CLINICIANS). A verified model admin is sent on from the verify step.
    "two_factor_verify": row("login", "forbidden", "forbidden", "forbidden", "redirect"),
    "two_factor_enrol": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    "two_factor_recovery_codes": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    "patients:list": row("login", "ok", "ok", "forbidden", "forbidden"),
    "patients:create": row("login", "ok", "ok", "forbidden", "forbidden"),
    "patients:import": row("login", "ok", "ok", "forbidden", "forbidden"),
    "patients:detail": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "jobs:list": row("login", "ok", "ok", "ok", "ok"),
    "jobs:detail": row("login", "ok", "not_found", "not_found", "not_found"),
    "jobs:status": row("login", "ok", "not_found", "not_found", "not_found"),
    "jobs:cancel": row("login", "redirect", "not_found", "not_found", "not_found", method="POST"),
    # The fleet: model admins (and hospital IT, tested in tests/platform/test_fleet.py) only;
    # its actions answer with a redirect to the page and a message, whatever the outcome.
    "jobs:fleet": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    "jobs:fleet_drain": row(
        "login", "forbidden", "forbidden", "forbidden", "redirect", method="POST"
    ),
    "jobs:fleet_cancel": row(
        "login", "forbidden", "forbidden", "forbidden", "redirect", method="POST"
    ),
    "jobs:fleet_requeue": row(
        "login", "forbidden", "forbidden", "forbidden", "redirect", method="POST"
    ),
    "diagnosis:patient_scans": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "diagnosis:scan_detail": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "diagnosis:scan_frame": row("login", "ok", "not_found", "forbidden", "forbidden"),
    # A scan held for possible burned-in text: only its patient's care team sees it.
    "diagnosis:scan_hold": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "diagnosis:scan_review": row(
        "login", "redirect", "not_found", "forbidden", "forbidden", method="POST"
    ),
    # Without a reason the score-anyway request is refused as bad input (400).
    "diagnosis:scan_override": row(
        "login", "bad_request", "not_found", "forbidden", "forbidden", method="POST"
    ),
    # Results leaving MedAI (DICOM SR, heat-map capture, FHIR): audited exports for the
    # patient's care team.
    "diagnosis:prediction_sr": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "diagnosis:prediction_sc": row("login", "ok", "not_found", "forbidden", "forbidden"),
    # Sending a result to its PACS again: the patient's care team only.
    "diagnosis:send_again": row(
        "login", "redirect", "not_found", "forbidden", "forbidden", method="POST"
    ),
    "diagnosis:scan_fhir": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "diagnosis:patient_fhir": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "diagnosis:worklist": row("login", "ok", "ok", "forbidden", "forbidden"),
    # Studies received over DICOM that matched no patient: they belong to no care team yet,
    # so every clinician may see them to find the patient (and may assign one only to a
    # patient of their own teams); nobody else sees the sender's identifiers.
    "diagnosis:inbox": row("login", "ok", "ok", "forbidden", "forbidden"),
    # A waiting study shows only to clinicians with a patient it could be (clinician A's).
    "diagnosis:inbox_assign": row("login", "ok", "not_found", "forbidden", "forbidden"),
    # Studies no care team could claim: hospital IT (superusers) only, none of these roles.
    "diagnosis:inbox_unclaimed": row("login", "forbidden", "forbidden", "forbidden", "forbidden"),
    "diagnosis:inbox_discard": row(
        "login", "forbidden", "forbidden", "forbidden", "forbidden", method="POST"
    ),
    "diagnosis:monitoring": row("login", "ok", "ok", "forbidden", "ok"),
    "diagnosis:training": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    "diagnosis:training_job": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    "diagnosis:dataset_create": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    # Without a file the upload is refused as bad input (400).
    "diagnosis:dataset_upload": row(
        "login", "forbidden", "forbidden", "forbidden", "bad_request", method="POST"
    ),
    "diagnosis:dataset_from_reviews": row(
        "login", "forbidden", "forbidden", "forbidden", "redirect", method="POST"
    ),
    "treatment:patient_options": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "treatment:assessment": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "treatment:patient_fhir": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "treatment:plan_create": row(
        "login", "redirect", "not_found", "forbidden", "forbidden", method="POST"
    ),
    "treatment:training": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    # Aggregate trial-cohort research, shared among researchers and model admins.
    "treatment:cohort": row("login", "forbidden", "forbidden", "ok", "ok"),
    "treatment:cohort_detail": row("login", "forbidden", "forbidden", "ok", "ok"),
    "treatment:cohort_genomics": row(
        "login", "forbidden", "forbidden", "redirect", "redirect", method="POST"
    ),
    # Drug design: research pages without patient data, for researchers and model admins.
    "drugs:home": row("login", "forbidden", "forbidden", "ok", "ok"),
    "drugs:dataset_create": row("login", "forbidden", "forbidden", "ok", "ok"),
    "drugs:dataset_detail": row("login", "forbidden", "forbidden", "ok", "ok"),
    "drugs:run_create": row("login", "forbidden", "forbidden", "ok", "ok"),
    "drugs:run_detail": row("login", "forbidden", "forbidden", "ok", "ok"),
    "drugs:run_live": row("login", "forbidden", "forbidden", "ok", "ok"),
    "drugs:run_molecules": row("login", "forbidden", "forbidden", "ok", "ok"),
    "drugs:run_export": row("login", "forbidden", "forbidden", "ok", "ok"),
    # Without a sample size the POST goes back to the run with a message.
    "drugs:run_sample": row(
        "login", "forbidden", "forbidden", "redirect", "redirect", method="POST"
    ),
    "drugs:molecule_detail": row("login", "forbidden", "forbidden", "ok", "ok"),
    "drugs:shortlist_save": row(
        "login", "forbidden", "forbidden", "redirect", "redirect", method="POST"
    ),
    "drugs:shortlist_remove": row(
        "login", "forbidden", "forbidden", "redirect", "redirect", method="POST"
    ),
    "drugs:shortlist": row("login", "forbidden", "forbidden", "ok", "ok"),
    "drugs:predictors": row("login", "forbidden", "forbidden", "ok", "ok"),
    # Without a ?smiles= the drawing endpoint answers 400.
    "drugs:structure": row("login", "forbidden", "forbidden", "bad_request", "bad_request"),
    "admin:diagnosis_imagedataset_changelist": row(
        "login", "admin_login", "admin_login", "admin_login", "ok"
    ),
    # The device API answers people (signed in or not) 401: only device tokens get in.
    "remote_care:api_observations": row(
        "unauthorized",
        "unauthorized",
        "unauthorized",
        "unauthorized",
        "unauthorized",
        method="POST",
    ),
    "remote_care:patient_monitoring": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "remote_care:device_revoke": row(
        "login", "redirect", "not_found", "forbidden", "forbidden", method="POST"
    ),
    # Without an action the POST is refused as bad input (400); with one it redirects back.
    "remote_care:alert_action": row(
        "login", "bad_request", "not_found", "forbidden", "forbidden", method="POST"
    ),
    "remote_care:board": row("login", "ok", "ok", "forbidden", "forbidden"),
    "remote_care:board_rows": row("login", "ok", "ok", "forbidden", "forbidden"),
    # Population analytics: aggregates only. Researchers and model admins over every
    # monitored patient; clinicians the same dashboard over their own care teams' patients.
    "remote_care:analytics": row("login", "ok", "ok", "ok", "ok"),
    "remote_care:analytics_export": row("login", "ok", "ok", "ok", "ok"),
    "remote_care:vitals": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "remote_care:vitals_data": row("login", "ok", "not_found", "forbidden", "forbidden"),
    # FHIR and waveform device endpoints: device tokens only, like the observations API.
    "remote_care:api_fhir_bundle": row(*["unauthorized"] * 5, method="POST"),
    "remote_care:api_waveforms": row(*["unauthorized"] * 5, method="POST"),
    # DICOMweb STOW-RS: sender tokens only, whoever is signed in.
    "dicomweb:stow": row(*["unauthorized"] * 5, method="POST"),
    "dicomweb:stow_study": row(*["unauthorized"] * 5, method="POST"),
    "remote_care:patient_fhir_export": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "remote_care:risk_fhir": row("login", "ok", "not_found", "forbidden", "forbidden"),
    # The API's schema and Swagger UI: clinicians and staff (the model admin is staff).
    "remote_care:api_schema": row("login", "ok", "ok", "forbidden", "ok"),
    "remote_care:api_docs": row("login", "ok", "ok", "forbidden", "ok"),
    # Messaging (care-team side) and the patients' portal accounts.
    "remote_care:inbox": row("login", "ok", "ok", "forbidden", "forbidden"),
    "remote_care:thread": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "remote_care:thread_new": row("login", "ok", "not_found", "forbidden", "forbidden"),
    "remote_care:message_photo": row("login", "ok", "not_found", "forbidden", "forbidden"),
    # Without a model task the POST is refused as bad input (400).
    "remote_care:message_photo_to_scan": row(
        "login", "bad_request", "not_found", "forbidden", "forbidden", method="POST"
    ),
    "remote_care:portal_access": row(
        "login", "bad_request", "not_found", "forbidden", "forbidden", method="POST"
    ),
    # The deterioration model: model admins train it; its facts card is for everyone who sees
    # its scores or studies it.
    "remote_care:risk_models": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    "remote_care:risk_model_facts": row("login", "ok", "ok", "ok", "ok"),
    # Disease-progression research on public cohorts: researchers and model admins.
    "remote_care:progression": row("login", "forbidden", "forbidden", "ok", "ok"),
    "remote_care:progression_detail": row("login", "forbidden", "forbidden", "ok", "ok"),
    # The patient portal: only the patient's own portal user gets in.
    "portal:home": row("login", *["forbidden"] * 4, patient="ok"),
    "portal:messages": row("login", *["forbidden"] * 4, patient="ok"),
    "portal:thread_new": row("login", *["forbidden"] * 4, patient="ok"),
    "portal:thread": row("login", *["forbidden"] * 4, patient="ok"),
    "portal:photo": row("login", *["forbidden"] * 4, patient="ok"),
    # The set-password link: open to anyone holding it; a wrong token shows "link no
    # longer works" (200) and changes nothing.
    "portal:activate": row("ok", "ok", "ok", "ok", "ok", patient="ok"),
    # Admin pages that matter, explicitly:
    # Shadow mode of model versions: model admins (and superusers) only. A start without a
    # reason is refused as bad input; a stop needs none and redirects back.
    "registry:shadow_list": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    "registry:shadow_dashboard": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    "registry:shadow_start": row(
        "login", "forbidden", "forbidden", "forbidden", "bad_request", method="POST"
    ),
    "registry:shadow_stop": row(
        "login", "forbidden", "forbidden", "forbidden", "redirect", method="POST"
    ),
    "admin:index": row("admin_login", "admin_login", "admin_login", "admin_login", "ok"),
    # Model governance: model admins act; clinicians and researchers are refused (superusers,
    # hospital IT, may read the timeline). An empty form is a 400 with the reason wanted.
    "registry:governance": row("login", "forbidden", "forbidden", "forbidden", "ok"),
    "registry:validate": row(
        "login", "forbidden", "forbidden", "forbidden", "redirect", method="POST"
    ),
    "registry:approve": row(
        "login", "forbidden", "forbidden", "forbidden", "bad_request", method="POST"
    ),
    "registry:activate": row(
        "login", "forbidden", "forbidden", "forbidden", "bad_request", method="POST"
    ),
    "registry:rollback": row(
        "login", "forbidden", "forbidden", "forbidden", "bad_request", method="POST"
    ),
    "admin:registry_modelversion_changelist": row(
        "login", "admin_login", "admin_login", "admin_login", "ok"
    ),
    "admin:registry_modelversion_change": row(
        "login", "admin_login", "admin_login", "admin_login", "ok"
    ),
    "admin:jobs_job_changelist": row("login", "admin_login", "admin_login", "admin_login", "ok"),
    "admin:audit_auditevent_changelist": row(
        "login", "admin_login", "admin_login", "admin_login", "forbidden"
    ),
    "admin:patients_patient_changelist": row(
        "login", "admin_login", "admin_login", "admin_login", "forbidden"
    ),
    "admin:patients_patient_change": row(
        "login", "admin_login", "admin_login", "admin_login", "forbidden"
    ),
    "admin:auth_user_changelist": row(
        "login", "admin_login", "admin_login", "admin_login", "forbidden"
    ),
}

# Every other admin page: nobody but staff gets past the admin's sign-in; what staff see is
# the admin's own permission system, checked page by page above where it matters.
ADMIN_DEFAULT = {
    "anonymous": "login",
    "clinician_a": "admin_login",
    "clinician_b": "admin_login",
    "researcher": "admin_login",
    "model_admin": "any_staff_outcome",
    "patient": "forbidden",
}
# Admin pages without a login gate (the admin's own sign-in/out and i18n helpers).
ADMIN_OPEN = {
    "admin:login",
    "admin:logout",
    "admin:jsi18n",
    "admin:view_on_site",
    "admin:autocomplete",
    "admin:password_change",
    "admin:password_change_done",
    "admin:app_list",
}


def all_patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from all_patterns(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            name = f"{namespace}{entry.name}" if entry.name else None
            if name is None and namespace == "admin:":
                # The admin's unnamed redirects (object_id/ -> change page) share its gate.
                name = "admin:<unnamed>"
            yield name, route, entry


ROUTE_OBJECTS = {
    "registry:governance": {"pk": "version"},
    "registry:validate": {"pk": "version"},
    "registry:approve": {"pk": "version"},
    "registry:activate": {"pk": "version"},
    "registry:rollback": {"pk": "version"},
    "remote_care:patient_monitoring": {"patient_pk": "patient"},
    "remote_care:device_revoke": {"pk": "device"},
    "remote_care:alert_action": {"pk": "alert"},
    "remote_care:patient_fhir_export": {"patient_pk": "patient"},
    "remote_care:risk_fhir": {"patient_pk": "patient"},
    "remote_care:vitals": {"patient_pk": "patient"},
    "remote_care:vitals_data": {"patient_pk": "patient"},
    "patients:detail": {"pk": "patient"},
    "admin:patients_patient_change": {"object_id": "patient"},
    "diagnosis:patient_scans": {"patient_pk": "patient"},
    "diagnosis:scan_detail": {"pk": "scan"},
    "diagnosis:scan_frame": {"pk": "scan"},
    "diagnosis:scan_review": {"pk": "scan"},
    "diagnosis:scan_override": {"pk": "scan"},
    "diagnosis:scan_hold": {"pk": "held_scan"},
    "diagnosis:prediction_sr": {"pk": "prediction"},
    "diagnosis:prediction_sc": {"pk": "prediction"},
    "diagnosis:send_again": {"pk": "send"},
    "diagnosis:scan_fhir": {"pk": "scan"},
    "diagnosis:patient_fhir": {"patient_pk": "patient"},
    "diagnosis:training_job": {"pk": "training"},
    "diagnosis:inbox_assign": {"pk": "unmatched"},
    "diagnosis:inbox_discard": {"pk": "unmatched"},
    "treatment:patient_options": {"patient_pk": "patient"},
    "treatment:patient_fhir": {"patient_pk": "patient"},
    "treatment:assessment": {"patient_pk": "patient", "pk": "assessment"},
    "treatment:plan_create": {"patient_pk": "patient", "pk": "assessment"},
    "treatment:cohort_detail": {"pk": "cohort"},
    "remote_care:thread": {"pk": "thread"},
    "remote_care:thread_new": {"patient_pk": "patient"},
    "remote_care:message_photo": {"pk": "message"},
    "remote_care:message_photo_to_scan": {"pk": "message"},
    "remote_care:portal_access": {"patient_pk": "patient"},
    "portal:thread": {"pk": "thread"},
    "remote_care:progression_detail": {"pk": "progression"},
    "portal:photo": {"pk": "message"},
    "drugs:dataset_detail": {"pk": "drug_dataset"},
    "drugs:run_detail": {"pk": "drug_run"},
    "drugs:run_live": {"pk": "drug_run"},
    "drugs:run_molecules": {"pk": "drug_run"},
    "drugs:run_export": {"pk": "drug_run"},
    "drugs:run_sample": {"pk": "drug_run"},
    "drugs:molecule_detail": {"pk": "molecule"},
    "drugs:shortlist_save": {"pk": "molecule"},
    "drugs:shortlist_remove": {"pk": "molecule"},
    "jobs:fleet_drain": {"pk": "worker"},
    "registry:shadow_dashboard": {"pk": "version"},
    "registry:shadow_start": {"pk": "version"},
    "registry:shadow_stop": {"pk": "version"},
}


def url_for(name: str, pattern: str, world) -> str | None:
    """Fill a route's converters with objects owned by clinician A."""
    import re

    values = {
        "pk": world.job.pk,
        "object_id": world.version.pk,
        "index": 0,
        "uidb64": "MQ",
        "token": "not-a-token",
    }
    for key, attr in ROUTE_OBJECTS.get(name, {}).items():
        values[key] = getattr(world, attr).pk
    url = pattern
    for match in re.finditer(r"<(?:(\w+):)?(\w+)>", pattern):
        name = match.group(2)
        if name not in values:
            return None
        url = url.replace(match.group(0), str(values[name]))
    if "(?P<" in url or "^" in url:
        return None
    return "/" + url


def outcome(response) -> str:
    if response.status_code == 200:
        return "ok"
    if response.status_code in (301, 302):
        location = response["Location"]
        if location.startswith("/admin/login/"):
            return "admin_login"
        if location.startswith("/accounts/login/"):
            return "login"
        return "redirect"
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
    }.get(response.status_code, str(response.status_code))


@pytest.mark.django_db
def test_every_url_pattern_has_a_row(world):
    names = {name for name, _, _ in all_patterns() if name}
    unnamed = [route for name, route, _ in all_patterns() if not name]
    assert not unnamed, f"URL patterns without a name cannot be checked: {unnamed}"
    missing = sorted(n for n in names if n not in MATRIX and not n.startswith("admin:"))
    assert not missing, f"Add authorization matrix rows for: {missing}"
    stale = sorted(set(MATRIX) - names)
    assert not stale, f"Rows for URL names that no longer exist: {stale}"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(world, role):
    failures = []
    checked = 0
    for name, route, _ in all_patterns():
        if name in ADMIN_OPEN:
            continue
        expected_row = MATRIX.get(name) or (ADMIN_DEFAULT if name.startswith("admin:") else None)
        assert expected_row is not None, f"no row for {name}"
        url = url_for(name, route, world)
        if url is None:
            # Admin routes with converters other than object ids (e.g. app_label): the
            # admin index and list pages above cover their gate.
            continue
        method = expected_row.get("method", "GET")
        client = world.client_for(role)
        response = client.post(url) if method == "POST" else client.get(url)
        got = outcome(response)
        expected = expected_row[role]
        checked += 1
        if expected == "any_staff_outcome":
            if got in {"login", "admin_login"}:
                failures.append(f"{role} {method} {url} ({name}): staff were sent to sign in")
            continue
        if got != expected:
            failures.append(f"{role} {method} {url} ({name}): expected {expected}, got {got}")
    assert checked > 20
    assert not failures, "\n".join(failures)
