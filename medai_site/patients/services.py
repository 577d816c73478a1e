"""Every write to patients and care teams."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.jobs.models import Job
from medai_site.jobs.services import job_create
from medai_site.patients.models import (
    CareTeamMembership,
    Patient,
    PatientImport,
    PortalAccount,
    PortalLink,
)
from medai_site.patients.sources import BUILTIN_SOURCES, csv_check_header

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class PatientExists(ValueError):
    """A patient with this MRN is already registered (possibly in another care team)."""


def patient_create(
    *,
    mrn: str,
    given_name: str,
    family_name: str,
    birth_date: date,
    sex: str,
    created_by: User,
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


@transaction.atomic
def care_team_add(
    *,
    patient: Patient,
    user: User,
    added_by: User,
    role: str = CareTeamMembership.Role.MEMBER,
    request: Any = None,
) -> CareTeamMembership:
    """Add ``user`` to the patient's care team, audited; idempotent (an existing member keeps
    their role)."""
    membership, _ = CareTeamMembership.objects.get_or_create(
        patient=patient, user=user, defaults={"role": role, "added_by": added_by}
    )
    audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        actor=added_by,
        request=request,
        obj=membership,
        patient=patient,
        detail={"care_team_add": user.get_username(), "role": membership.role},
    )
    return membership


@transaction.atomic
def care_team_remove(
    *, membership: CareTeamMembership, removed_by: User, request: Any = None
) -> None:
    """Remove one member from a patient's care team, audited; their access to the patient (and
    the patient's jobs) ends with the commit. Idempotent: an already removed row is a no-op."""
    deleted, _ = CareTeamMembership.objects.filter(pk=membership.pk).delete()
    if not deleted:
        return
    audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        actor=removed_by,
        request=request,
        obj=membership,
        patient=membership.patient,
        detail={"care_team_remove": membership.user.get_username(), "role": membership.role},
    )


@transaction.atomic
def care_team_membership_change(
    *,
    membership: CareTeamMembership,
    user: User,
    role: str,
    changed_by: User,
    request: Any = None,
) -> CareTeamMembership:
    """Give a membership row another member or role, audited as what it means: the old member
    removed and the new one added, or a role changed. Returns the saved row."""
    old = (
        CareTeamMembership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    )
    membership.user = user
    membership.role = role
    membership.save(update_fields=["user", "role"])
    changes: dict[str, Any] = {}
    if old.user_id != user.pk:
        changes["care_team_remove"] = old.user.get_username()
        changes["care_team_add"] = user.get_username()
        changes["role"] = role
    elif old.role != role:
        changes["care_team_role"] = {
            "user": user.get_username(),
            "from": old.role,
            "to": role,
        }
    if changes:
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=changed_by,
            request=request,
            obj=membership,
            patient=membership.patient,
            detail=changes,
        )
    return membership


def patient_import_start(
    *,
    user: User,
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
        # Not the uploaded file's name, which may name patients; it stays on the import record.
        label = "a CSV file" if source == "csv" else BUILTIN_SOURCES[source].label
        job = job_create(
            kind="patients.import",
            owner=user,
            title=f"Import patients: {label}",
            params={"import_id": record.pk},
            target=record,
        )
    return job


def patient_import_finish(
    *, record: PatientImport, rows: list, user: User, source_label: str
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
    link: PortalLink
    # Shown once to the clinician (and e-mailed when the patient has an address) while the
    # account has never been activated; "" once it has been: then the link goes only to the
    # patient's address on file. Portal tokens expire after PASSWORD_RESET_TIMEOUT, stop
    # working once the password has been set, and when a newer link is issued.
    activation_path: str


def _activation_path(user: User) -> str:
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from medai_site.patients.activation import portal_activation_tokens

    return reverse(
        "portal:activate",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": portal_activation_tokens.make_token(user),
        },
    )


def _send_portal_link(*, user: User, link: str, renewal: bool) -> None:
    if not user.email:
        return
    opening = (
        "A new sign-in link for your MedAI patient portal account was issued by your care "
        "team. If you did not ask for one, ignore this message: your password stays as it is."
        if renewal
        else "Your care team has opened a MedAI patient portal account for you."
    )
    send_mail(
        subject="Your MedAI patient portal",
        # No clinical content in e-mail: only the link to set a password.
        message=(
            f"{opening}\n\n"
            f"Your user name: {user.get_username()}\n"
            f"Choose your password here: {link}\n\n"
            "The link works once and expires in "
            f"{settings.PASSWORD_RESET_TIMEOUT // 86400} days.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
        fail_silently=True,
    )


def _portal_link_record(
    *, account: PortalAccount, issued_by: User, channel: str, request: Any
) -> PortalLink:
    link = PortalLink.objects.create(
        account=account,
        issued_by=issued_by,
        channel=channel,
        emailed_to=account.user.email,
    )
    audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        actor=issued_by,
        request=request,
        obj=account,
        patient=account.patient,
        detail={
            "portal_account": "link_issued",
            "link": link.pk,
            "channel": channel,
            "emailed": bool(link.emailed_to),
        },
    )
    return link


def portal_account_create(
    *,
    patient: Patient,
    username: str,
    email: str,
    created_by: User,
    link_base: str = "",
    request: Any = None,
) -> PortalInvitation:
    """Open the patient's portal account (a user holding only the patient role, with no
    usable password until the patient sets one through the returned link, which is recorded
    as issued by ``created_by``). PortalAccountError when the patient already has one or the
    user name is taken."""
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
            link = _portal_link_record(
                account=account,
                issued_by=created_by,
                channel=PortalLink.Channel.SHOWN,
                request=request,
            )
            # The token binds the newest link, so it is made after the link row exists.
            path = _activation_path(user)
    except IntegrityError:
        # Another request opened an account for this patient, or took the user name, after
        # the checks above: the unique constraints decide.
        raise PortalAccountError(
            "This patient's portal account or the user name was just created by someone else; "
            "reload the page."
        ) from None
    transaction.on_commit(
        lambda: _send_portal_link(user=user, link=link_base + path, renewal=False)
    )
    return PortalInvitation(account=account, link=link, activation_path=path)


def portal_link_issue(
    *, account: PortalAccount, issued_by: User, link_base: str = "", request: Any = None
) -> PortalInvitation:
    """A fresh set-password link that replaces every earlier one of the account (reopens a
    revoked account); recorded with issuer, time and channel, and audited. Before the first
    activation the link is returned to show once (and e-mailed when there is an address);
    after it, the link is only e-mailed to the patient's address on file and activation_path
    is "". PortalAccountError when the account is activated and has no address."""
    with transaction.atomic():
        account = (
            PortalAccount.objects.select_for_update()
            .select_related("user", "patient")
            .get(pk=account.pk)
        )
        user = account.user
        activated = account.is_activated
        if activated and not user.email:
            raise PortalAccountError(
                "The patient has already activated this portal account, so a new sign-in "
                "link can only be e-mailed to the patient, and there is no e-mail address "
                "on file. The patient can ask the hospital's IT service to reset access."
            )
        if account.revoked_at is not None:
            account.revoked_at = None
            account.save(update_fields=["revoked_at"])
        if not user.is_active:
            user.is_active = True
            user.save(update_fields=["is_active"])
        link = _portal_link_record(
            account=account,
            issued_by=issued_by,
            channel=PortalLink.Channel.EMAIL if activated else PortalLink.Channel.SHOWN,
            request=request,
        )
        path = _activation_path(user)
    transaction.on_commit(lambda: _send_portal_link(user=user, link=link_base + path, renewal=True))
    return PortalInvitation(account=account, link=link, activation_path="" if activated else path)


@transaction.atomic
def portal_account_activate(*, user: User, request: Any = None) -> PortalAccount:
    """Record that the patient set their password through their newest link: the link is
    marked used and the account activated (first time only); audited. Caller has already
    checked the token."""
    account = PortalAccount.objects.select_for_update().select_related("patient").get(user=user)
    now = timezone.now()
    if account.activated_at is None:
        account.activated_at = now
        account.save(update_fields=["activated_at"])
    link = account.links.order_by("-pk").first()
    if link is not None and link.used_at is None:
        link.used_at = now
        link.save(update_fields=["used_at"])
    audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        actor=user,
        request=request,
        obj=account,
        patient=account.patient,
        detail={"portal_account": "password set", "link": link.pk if link else None},
    )
    return account


def portal_account_revoke(
    *, account: PortalAccount, revoked_by: User, request: Any = None
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
