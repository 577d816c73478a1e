"""Every write to patients and care teams."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.jobs.models import Job
from medai_site.jobs.services import job_create
from medai_site.patients.models import CareTeamMembership, Patient, PatientImport, PortalAccount
from medai_site.patients.sources import BUILTIN_SOURCES, csv_check_header


class PatientExists(ValueError):
    """A patient with this MRN is already registered (possibly in another care team)."""


def patient_create(
    *,
    mrn: str,
    given_name: str,
    family_name: str,
    birth_date: date,
    sex: str,
    created_by: Any,
    source: str = "",
    clinical_facts: dict[str, Any] | None = None,
    request: Any = None,
) -> Patient:
    """Register a patient with ``created_by`` as responsible clinician; PatientExists on a
    duplicate MRN (the existing record is never shared by re-registering it)."""
    try:
        with transaction.atomic():
            patient = Patient.objects.create(
                mrn=mrn.strip(),
                given_name=given_name.strip(),
                family_name=family_name.strip(),
                birth_date=birth_date,
                sex=sex,
                created_by=created_by,
                source=source,
                clinical_facts=clinical_facts or {},
            )
            CareTeamMembership.objects.create(
                patient=patient,
                user=created_by,
                role=CareTeamMembership.Role.RESPONSIBLE,
                added_by=created_by,
            )
            audit_record(
                action=AuditEvent.Action.PATIENT_CREATED,
                actor=created_by,
                request=request,
                obj=patient,
                patient=patient,
            )
    except IntegrityError:
        raise PatientExists(
            f"A patient with MRN {mrn} is already registered. Ask their responsible clinician "
            "to add you to the care team."
        ) from None
    return patient


def care_team_add(
    *, patient: Patient, user: Any, added_by: Any, role: str = CareTeamMembership.Role.MEMBER
) -> CareTeamMembership:
    """Add ``user`` to the patient's care team; idempotent."""
    membership, _ = CareTeamMembership.objects.get_or_create(
        patient=patient, user=user, defaults={"role": role, "added_by": added_by}
    )
    audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        actor=added_by,
        obj=membership,
        patient=patient,
        detail={"care_team_add": user.get_username()},
    )
    return membership


def patient_import_start(
    *,
    user: Any,
    source: str,
    upload: bytes | None = None,
    filename: str = "",
    limit: int | None = None,
    request: Any = None,
) -> Job:
    """Validate the input, store it, and queue an import job (all or nothing).
    Raises CsvRejected / ValueError with a message for the person importing."""
    if source == "csv":
        if upload is None:
            raise ValueError("Choose a CSV file to upload.")
        csv_check_header(upload)
    elif source not in BUILTIN_SOURCES:
        raise ValueError(f"Unknown data set {source!r}.")
    with transaction.atomic():
        record = PatientImport(
            source=source, original_name=filename[:200], limit=limit, created_by=user
        )
        if upload is not None:
            record.file.save("upload.csv", ContentFile(upload), save=False)
        record.save()
        label = filename if source == "csv" else BUILTIN_SOURCES[source].label
        job = job_create(
            kind="patients.import",
            owner=user,
            title=f"Import patients: {label or source}",
            params={"import_id": record.pk},
            target=record,
        )
    return job


def patient_import_finish(
    *, record: PatientImport, rows: list, user: Any, source_label: str
) -> tuple[int, int]:
    """Create the import's new patients in one transaction; rows whose MRN is already
    registered are skipped, never shared. Returns (imported, skipped). Caller holds the
    job's finishing transaction."""
    mrns = [row.mrn for row in rows]
    existing = set(Patient.objects.filter(mrn__in=mrns).values_list("mrn", flat=True))
    fresh = [row for row in rows if row.mrn not in existing]
    patients = Patient.objects.bulk_create(
        [
            Patient(
                mrn=row.mrn,
                given_name=row.given_name,
                family_name=row.family_name,
                birth_date=row.birth_date,
                sex=row.sex,
                created_by=user,
                source=source_label + (" (synthetic name)" if row.synthetic_name else ""),
                clinical_facts=row.clinical_facts,
            )
            for row in fresh
        ]
    )
    # bulk_create returns primary keys on PostgreSQL and SQLite 3.35+.
    CareTeamMembership.objects.bulk_create(
        [
            CareTeamMembership(
                patient=patient, user=user, role=CareTeamMembership.Role.RESPONSIBLE, added_by=user
            )
            for patient in patients
        ]
    )
    record.imported = len(patients)
    record.skipped = len(rows) - len(patients)
    record.finished_at = timezone.now()
    record.save(update_fields=["imported", "skipped", "errors", "finished_at"])
    audit_record(
        action=AuditEvent.Action.PATIENTS_IMPORTED,
        actor=user,
        obj=record,
        detail={
            "imported": record.imported,
            "skipped": record.skipped,
            "rejected_rows": len(record.errors),
        },
    )
    return record.imported, record.skipped


class PortalAccountError(ValueError):
    """A portal account request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class PortalInvitation:
    account: PortalAccount
    # Shown once to the clinician (and e-mailed when the patient has an address): the
    # patient sets their own password there. Django's reset tokens expire after
    # PASSWORD_RESET_TIMEOUT and stop working once the password has been set.
    activation_path: str


def _activation_path(user: Any) -> str:
    from django.contrib.auth.tokens import default_token_generator
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    return reverse(
        "portal:activate",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )


def _send_portal_link(*, user: Any, link: str) -> None:
    if not user.email:
        return
    send_mail(
        subject="Your MedAI patient portal",
        # No clinical content in e-mail: only the link to set a password.
        message=(
            "Your care team has opened a MedAI patient portal account for you.\n\n"
            f"Your user name: {user.get_username()}\n"
            f"Choose your password here: {link}\n\n"
            "The link works once and expires in "
            f"{settings.PASSWORD_RESET_TIMEOUT // 86400} days.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
        fail_silently=True,
    )


def portal_account_create(
    *,
    patient: Patient,
    username: str,
    email: str,
    created_by: Any,
    link_base: str = "",
    request: Any = None,
) -> PortalInvitation:
    """Open the patient's portal account (a user holding only the patient role, with no
    usable password until the patient sets one through the returned link). PortalAccountError
    when the patient already has one or the user name is taken."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from medai_site.core.roles import Role

    username = username.strip()
    user_model = get_user_model()
    if PortalAccount.objects.filter(patient=patient).exists():
        raise PortalAccountError(
            "This patient already has a portal account; issue a new sign-in link instead."
        )
    if user_model.objects.filter(username__iexact=username).exists():
        raise PortalAccountError(f"The user name “{username}” is taken; choose another.")
    try:
        with transaction.atomic():
            user = user_model(
                username=username,
                email=email.strip(),
                first_name=patient.given_name,
                last_name=patient.family_name,
            )
            user.set_unusable_password()
            user.save()
            group, _ = Group.objects.get_or_create(name=str(Role.PATIENT))
            user.groups.add(group)
            account = PortalAccount.objects.create(
                patient=patient, user=user, created_by=created_by
            )
            audit_record(
                action=AuditEvent.Action.RECORD_CHANGED,
                actor=created_by,
                request=request,
                obj=account,
                patient=patient,
                detail={"portal_account": "created", "username": username},
            )
    except IntegrityError:
        # Another request opened an account for this patient, or took the user name, after
        # the checks above: the unique constraints decide.
        raise PortalAccountError(
            "This patient's portal account or the user name was just created by someone else; "
            "reload the page."
        ) from None
    path = _activation_path(user)
    transaction.on_commit(lambda: _send_portal_link(user=user, link=link_base + path))
    return PortalInvitation(account=account, activation_path=path)


def portal_link_issue(
    *, account: PortalAccount, issued_by: Any, link_base: str = "", request: Any = None
) -> PortalInvitation:
    """A fresh sign-in link for an existing portal account (first sign-in, or a forgotten
    password); reopens a revoked account."""
    with transaction.atomic():
        account = PortalAccount.objects.select_for_update().get(pk=account.pk)
        if account.revoked_at is not None:
            account.revoked_at = None
            account.save(update_fields=["revoked_at"])
        user = account.user
        if not user.is_active:
            user.is_active = True
            user.save(update_fields=["is_active"])
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=issued_by,
            request=request,
            obj=account,
            patient=account.patient,
            detail={"portal_account": "link_issued"},
        )
    path = _activation_path(account.user)
    transaction.on_commit(lambda: _send_portal_link(user=account.user, link=link_base + path))
    return PortalInvitation(account=account, activation_path=path)


def portal_account_revoke(
    *, account: PortalAccount, revoked_by: Any, request: Any = None
) -> PortalAccount:
    """Close the portal account: the user is deactivated (their sessions stop working on the
    next request); idempotent."""
    with transaction.atomic():
        account = PortalAccount.objects.select_for_update().get(pk=account.pk)
        if account.revoked_at is None:
            account.revoked_at = timezone.now()
            account.save(update_fields=["revoked_at"])
        user = account.user
        if user.is_active:
            user.is_active = False
            user.save(update_fields=["is_active"])
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=revoked_by,
            request=request,
            obj=account,
            patient=account.patient,
            detail={"portal_account": "revoked"},
        )
    return account
