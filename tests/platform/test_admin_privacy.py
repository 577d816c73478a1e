"""Staff without clinical access never see patient identifiers; admin access is audited.

The harness seeds a patient with distinctive identifiers and patient-bound rows of every kind,
then opens every admin page the admin site exposes and every other page the staff roles may
open (from the authorization matrix), and looks for the identifiers in every response.
"""

from __future__ import annotations

import datetime
import importlib
from types import SimpleNamespace

import numpy as np
import pytest
from django.apps import apps as django_apps
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.core.roles import Role
from medai_site.jobs.models import Job
from medai_site.patients.models import CareTeamMembership, Patient
from tests.platform.factories import CareTeamMembershipFactory, JobFactory, UserFactory, patient_for
from tests.test_authorization_matrix import MATRIX, all_patterns, url_for

pytestmark = pytest.mark.django_db

MRN = "ZQX7731PRIV"
GIVEN = "Quillonette"
FAMILY = "Vexmoorly"
BIRTH = datetime.date(1937, 4, 19)
# The birth date as any page might print it.
BIRTH_TEXTS = (
    "1937-04-19",
    "19/04/1937",
    "04/19/1937",
    "19.04.1937",
    "19 Apr 1937",
    "Apr 19, 1937",
    "April 19, 1937",
    "Apr. 19, 1937",
    "19 April 1937",
)
IDENTIFIERS = (MRN, GIVEN, FAMILY, *BIRTH_TEXTS)
STAFF_ROLES = ("model_admin", "researcher", "staff_researcher")


def identifiers_in(text: str) -> list[str]:
    lowered = text.lower()
    return [value for value in IDENTIFIERS if value.lower() in lowered]


def body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def login(user) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def chest_png() -> bytes:
    from tests.diagnosis.files import chest_png as real_chest_png

    return real_chest_png()


@pytest.fixture
def superuser(db):
    return UserFactory(username="it_admin", is_staff=True, is_superuser=True)


@pytest.fixture
def seeded(world, users, superuser, active_model):
    """The matrix's world (scans, predictions, jobs, assessments, observations, alerts,
    messages, a portal account) about one patient who now carries distinctive identifiers,
    plus jobs made by the real services and rows in the shapes older code left behind."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from diagnosis.services import scan_upload
    from medai_site.patients.services import patient_import_start
    from remote_care.devices.services import device_register
    from remote_care.devices.waveforms import waveform_store
    from treatment.ml.trials import load_trial, to_plain
    from treatment.services import assessment_start

    patient = world.patient
    Patient.objects.filter(pk=patient.pk).update(
        mrn=MRN, given_name=GIVEN, family_name=FAMILY, birth_date=BIRTH
    )
    patient.refresh_from_db()
    portal_user = users.patient
    portal_user.first_name, portal_user.last_name = GIVEN, FAMILY
    portal_user.save(update_fields=["first_name", "last_name"])

    upload = scan_upload(
        patient=patient,
        files=[SimpleUploadedFile(f"{FAMILY}.png", chest_png())],
        uploaded_by=users.clinician_a,
        task="diagnosis.pneumonia",
    )
    # A device label is typed freely by the clinician: here it names the patient.
    device = device_register(
        patient=patient, label=f"{FAMILY} home kit", registered_by=users.clinician_a
    ).device
    waveform = waveform_store(
        device=device,
        kind="ecg",
        fs=250.0,
        started_at=timezone.now(),
        samples=np.sin(np.linspace(0, 60, 250 * 15)),
    )
    facts = to_plain(load_trial("gbsg2").raw.iloc[0].to_dict())
    covariates = ("age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec")
    assessment = assessment_start(
        patient=patient,
        trial="gbsg2",
        inputs={k: facts[k] for k in covariates},
        horizon=None,
        user=users.clinician_a,
    )
    csv = f"mrn,given_name,family_name,birth_date,sex\n{MRN},{GIVEN},{FAMILY},1937-04-19,F\n"
    import_job = patient_import_start(
        user=users.clinician_a,
        source="csv",
        upload=csv.encode(),
        filename=f"{FAMILY}_{GIVEN}.csv",
    )
    # What a failed import reports: the MRN is in its error (a job with no patient row).
    Job.objects.filter(pk=import_job.pk).update(error=f"MRN {MRN} appears twice in the file")
    # Rows as the old code titled them, with clinical findings in the result.
    old_inference = JobFactory(
        kind="diagnosis.inference",
        title=f"Classify 3 scans for {MRN}",
        owner=users.clinician_a,
        patient=patient,
        result={"summary": f"Pneumonia suspected for {GIVEN} {FAMILY}"},
    )
    JobFactory(
        kind="treatment.assessment",
        title=f"Treatment options (gbsg2) for {MRN}",
        owner=users.clinician_a,
        patient=patient,
    )
    # Hospital IT changed the patient in the admin: the admin's own log names them.
    LogEntry.objects.create(
        user=superuser,
        content_type=ContentType.objects.get_for_model(Patient),
        object_id=str(patient.pk),
        object_repr=str(patient),
        action_flag=CHANGE,
        change_message="[]",
    )
    staff_researcher = UserFactory(
        username="staff_research", roles=[Role.RESEARCHER], is_staff=True
    )
    return SimpleNamespace(
        world=world,
        patient=patient,
        upload=upload,
        waveform=waveform,
        assessment=assessment,
        import_job=import_job,
        old_inference=old_inference,
        users={
            "model_admin": users.model_admin,
            "researcher": users.researcher,
            "staff_researcher": staff_researcher,
        },
    )


def admin_urls() -> list[str]:
    """Every admin page of every registered model and row, plus searches by identifier."""
    urls = [reverse("admin:index")]
    app_labels = set()
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        app_labels.add(model._meta.app_label)
        changelist = reverse(f"{prefix}_changelist")
        urls.append(changelist)
        for term in (MRN, FAMILY, GIVEN, "1937"):
            urls.append(f"{changelist}?q={term}")
        urls.append(f"{changelist}?patient__id__exact=1")
        for pk in model._default_manager.values_list("pk", flat=True):
            for page in ("change", "history", "delete"):
                urls.append(reverse(f"{prefix}_{page}", args=[pk]))
    urls += [reverse("admin:app_list", args=[label]) for label in sorted(app_labels)]
    urls.append(
        reverse("admin:autocomplete")
        + "?app_label=patients&model_name=careteammembership&field_name=user&term=a"
    )
    return urls


def staff_page_urls(world, role: str) -> list[str]:
    """Every non-admin page the matrix lets the role open (GET and 200)."""
    matrix_role = "researcher" if role == "staff_researcher" else role
    urls = []
    for name, route, _ in all_patterns():
        row = MATRIX.get(name)
        if row is None or row["method"] != "GET" or row[matrix_role] != "ok":
            continue
        url = url_for(name, route, world)
        if url is not None:
            urls.append(url)
    return urls


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_staff_never_see_patient_identifiers(seeded, role):
    client = login(seeded.users[role])
    urls = admin_urls() + staff_page_urls(seeded.world, role)
    leaks = []
    for url in urls:
        response = client.get(url, follow=True)
        assert response.status_code < 500, url
        text = body(response)
        if "?q=" in url:
            # The search box and the links that keep the search echo the term typed; only
            # those echoes are removed, a row that shows the term is still a leak.
            term = url.split("?q=", 1)[1]
            for echo in (f'value="{term}"', f"q={term}", f"q%3D{term}"):
                text = text.replace(echo, "")
        if found := identifiers_in(text):
            leaks.append(f"{url}: {found}")
    assert len(urls) > 100
    assert not leaks, "\n".join(leaks)


def test_the_harness_sees_identifiers_where_they_are_shown(seeded, superuser):
    # Hospital IT does see them (audited): the check above can fail.
    response = login(superuser).get(f"/admin/patients/patient/?q={MRN}")
    assert set(identifiers_in(body(response))) >= {MRN, GIVEN, FAMILY}


def test_model_admin_job_search_by_mrn_finds_nothing(seeded, users, superuser):
    client = login(users.model_admin)
    page = client.get("/admin/jobs/job/", {"q": MRN})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == []
    # The model admin's own work is still there, and the search itself works.
    listed = client.get("/admin/jobs/job/").context["cl"].result_list
    # (The world's training job, and the validation its model's registration queued.)
    assert seeded.world.training.pk in [job.pk for job in listed]
    assert {job.kind for job in listed} <= {seeded.world.training.kind, "registry.validate"}
    assert all(job.patient_id is None for job in listed)
    # A patient's job, opened by its number, is "not found" for the model admin.
    response = client.get(f"/admin/jobs/job/{seeded.old_inference.pk}/change/", follow=True)
    assert "doesn’t exist" in body(response) and MRN not in body(response)
    # Hospital IT's search finds the old row by the MRN in its title.
    found = login(superuser).get("/admin/jobs/job/", {"q": MRN}).context["cl"].result_list
    assert seeded.old_inference in list(found)


def test_job_titles_carry_no_identifiers(seeded):
    jobs = [
        seeded.upload.job,
        Job.objects.get(pk=seeded.waveform.job_id),
        seeded.assessment.job,
        seeded.import_job,
    ]
    titles = [job.title for job in jobs]
    assert titles == [
        "Classify 1 scan",
        "ECG analysis",
        "Treatment options (gbsg2)",
        "Import patients: a CSV file",
    ]
    for job in jobs[:3]:
        assert job.patient_id == seeded.patient.pk  # the patient stays on the row itself


def test_migration_rewrites_titles_that_carry_identifiers(users):
    migration = importlib.import_module(
        "medai_site.jobs.migrations.0003_job_titles_without_identifiers"
    )
    patient = patient_for(users.clinician_a, mrn="MRN-4471", given_name="Al", family_name="Ng")
    from medai_site.patients.models import PatientImport

    record = PatientImport.objects.create(
        source="csv", original_name="ng_al.csv", created_by=users.clinician_a
    )

    def job(kind, title, **fields):
        return JobFactory(kind=kind, title=title, owner=users.clinician_a, **fields)

    rows = {
        "Classify 3 scans": job(
            "diagnosis.inference", "Classify 3 scans for MRN-4471", patient=patient
        ),
        "Classify 1 scan": job(
            "diagnosis.inference", "Classify 1 scan for MRN-4471", patient=patient
        ),
        "Treatment options (gbsg2)": job(
            "treatment.assessment", "Treatment options (gbsg2) for MRN-4471", patient=patient
        ),
        "ECG analysis": job("remote_care.waveform", "ECG analysis from Ng's kit", patient=patient),
        # An unknown shape still naming the patient keeps nothing of its text.
        "test.slow job": job("test.slow", "Check on Al Ng", patient=patient),
        # A name inside another word is not the name: the title stays.
        "PPG analysis": job("remote_care.waveform", "PPG analysis", patient=patient),
        "Import patients: a CSV file": job(
            "patients.import", "Import patients: ng_al.csv", params={"import_id": record.pk}
        ),
        "Train cnn on pneumonia": job("diagnosis.training", "Train cnn on pneumonia"),
    }
    migration.forwards(django_apps, None)
    for expected, row in rows.items():
        row.refresh_from_db()
        assert row.title == expected


def test_superuser_admin_views_of_patient_bound_rows_are_audited(seeded, superuser):
    client = login(superuser)
    patient = seeded.patient
    before = AuditEvent.objects.count()

    def viewed(page: str, model: str) -> AuditEvent:
        return AuditEvent.objects.filter(
            pk__gt=before,
            action=AuditEvent.Action.RECORD_VIEWED,
            actor=superuser,
            patient=patient,
            detail__page=page,
            detail__model=model,
        ).get()

    assert client.get("/admin/jobs/job/").status_code == 200
    listed = viewed("changelist", "jobs.Job")
    assert str(seeded.old_inference.pk) in listed.detail["ids"]
    assert client.get(f"/admin/jobs/job/{seeded.old_inference.pk}/change/").status_code == 200
    assert viewed("change", "jobs.Job").detail["ids"] == [str(seeded.old_inference.pk)]
    assert client.get(f"/admin/patients/patient/{patient.pk}/change/").status_code == 200
    viewed("change", "patients.Patient")
    assert client.get("/admin/patients/patient/", {"q": MRN}).status_code == 200
    viewed("changelist", "patients.Patient")
    assert client.get("/admin/auth/user/").status_code == 200
    viewed("changelist", "auth.User")
    # A job about no patient is not a patient view.
    training = seeded.world.training
    count = AuditEvent.objects.filter(action=AuditEvent.Action.RECORD_VIEWED).count()
    assert client.get(f"/admin/jobs/job/{training.pk}/change/").status_code == 200
    assert AuditEvent.objects.filter(action=AuditEvent.Action.RECORD_VIEWED).count() == count


def care_team_form(patient: Patient, memberships: list[dict]) -> dict:
    data = {
        "mrn": patient.mrn,
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex,
        "source": patient.source,
        "memberships-TOTAL_FORMS": str(len(memberships)),
        "memberships-INITIAL_FORMS": str(sum(1 for m in memberships if m.get("id"))),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, membership in enumerate(memberships):
        for key, value in membership.items():
            data[f"memberships-{i}-{key}"] = value
        data[f"memberships-{i}-patient"] = str(patient.pk)
    return data


def test_care_team_changes_in_the_admin_are_audited(users, superuser):
    patient = patient_for(users.clinician_a)
    kept = CareTeamMembership.objects.get(patient=patient, user=users.clinician_a)
    leaving = CareTeamMembershipFactory(patient=patient, user=users.researcher)
    client = login(superuser)
    response = client.post(
        f"/admin/patients/patient/{patient.pk}/change/",
        care_team_form(
            patient,
            [
                {"id": str(kept.pk), "user": str(users.clinician_a.pk), "role": "member"},
                {
                    "id": str(leaving.pk),
                    "user": str(users.researcher.pk),
                    "role": "member",
                    "DELETE": "on",
                },
                {"id": "", "user": str(users.clinician_b.pk), "role": "responsible"},
            ],
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    team = dict(
        CareTeamMembership.objects.filter(patient=patient).values_list("user__username", "role")
    )
    assert team == {"clin_a": "member", "clin_b": "responsible"}
    events = AuditEvent.objects.filter(
        action=AuditEvent.Action.RECORD_CHANGED, actor=superuser, patient=patient
    )
    details = [event.detail for event in events]
    assert {"care_team_add": "clin_b", "role": "responsible"} in details
    assert {"care_team_remove": "research", "role": "member"} in details
    assert {"care_team_role": {"user": "clin_a", "from": "responsible", "to": "member"}} in details
    # The clinician added through the admin reaches the patient's jobs at once.
    job = JobFactory(title="x", owner=users.clinician_a, patient=patient)
    assert login(users.clinician_b).get(f"/jobs/{job.pk}/").status_code == 200
    assert login(users.researcher).get(f"/jobs/{job.pk}/").status_code == 404


def user_form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "groups": [str(g) for g in user.groups.values_list("pk", flat=True)],
        "user_permissions": [],
    }
    for flag in ("is_active", "is_staff", "is_superuser"):
        if getattr(user, flag):
            data[flag] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_role_and_superuser_changes_in_the_admin_are_audited(users, superuser):
    client = login(superuser)
    clinician = users.clinician_a
    model_admin_group = Group.objects.get(name=str(Role.MODEL_ADMIN))
    response = client.post(
        f"/admin/auth/user/{clinician.pk}/change/",
        user_form(
            clinician,
            groups=[str(model_admin_group.pk)],  # clinician revoked, model admin granted
            is_staff="on",
            is_superuser="on",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(
        action=AuditEvent.Action.RECORD_CHANGED, actor=superuser, detail__access_of="clin_a"
    )
    assert event.object_type == "auth.User" and event.object_id == str(clinician.pk)
    assert event.detail["roles_granted"] == ["model_admin"]
    assert event.detail["roles_revoked"] == ["clinician"]
    assert event.detail["superuser"] == {"from": False, "to": True}
    assert event.detail["staff"] == {"from": False, "to": True}

    # A role's permissions changed: every member's access changed with it.
    from django.contrib.auth.models import Permission

    permission = Permission.objects.get(codename="view_patient")
    kept = list(model_admin_group.permissions.values_list("pk", flat=True))
    response = client.post(
        f"/admin/auth/group/{model_admin_group.pk}/change/",
        {"name": "model_admin", "permissions": [str(pk) for pk in [*kept, permission.pk]]},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(actor=superuser, detail__role="model_admin")
    assert event.detail["permissions_granted"] == ["patients.view_patient"]

    # Saving without a change writes no access event.
    count = AuditEvent.objects.filter(action=AuditEvent.Action.RECORD_CHANGED).count()
    clinician.refresh_from_db()
    response = client.post(f"/admin/auth/user/{clinician.pk}/change/", user_form(clinician))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action=AuditEvent.Action.RECORD_CHANGED).count() == count


def test_a_portal_user_cannot_join_a_care_team_in_the_admin(users, superuser):
    from medai_site.patients.services import portal_account_create

    patient = patient_for(users.clinician_a, given_name="Portalina", family_name="Selfsame")
    portal_user = portal_account_create(
        patient=patient, username="portal_p", email="", created_by=users.clinician_a
    ).account.user
    other = patient_for(users.clinician_a)
    client = login(superuser)
    picker = client.get(
        "/admin/autocomplete/",
        {
            "app_label": "patients",
            "model_name": "careteammembership",
            "field_name": "user",
            "term": "Selfsame",
        },
    )
    assert picker.status_code == 200 and picker.json()["results"] == []
    assert client.get(
        "/admin/autocomplete/",
        {
            "app_label": "patients",
            "model_name": "careteammembership",
            "field_name": "user",
            "term": "clin_b",
        },
    ).json()["results"] == [{"id": str(users.clinician_b.pk), "text": "clin_b"}]
    kept = CareTeamMembership.objects.get(patient=other)
    response = client.post(
        f"/admin/patients/patient/{other.pk}/change/",
        care_team_form(
            other,
            [
                {"id": str(kept.pk), "user": str(users.clinician_a.pk), "role": "responsible"},
                {"id": "", "user": str(portal_user.pk), "role": "member"},
            ],
        ),
    )
    assert response.status_code == 200  # the form comes back with the error
    assert not CareTeamMembership.objects.filter(user=portal_user).exists()
