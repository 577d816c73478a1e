"""Patients, and the care teams that decide who may see them."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Unknown"

    mrn = models.CharField("MRN", max_length=32, unique=True)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    # Where the record came from (e.g. an imported trial data set) and the clinical facts it
    # carried; clinical apps pre-fill their forms from these.
    source = models.CharField(max_length=100, blank=True)
    clinical_facts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    care_team: models.ManyToManyField[User, CareTeamMembership] = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="CareTeamMembership",
        through_fields=("patient", "user"),
        related_name="patients",
    )

    class Meta:
        ordering = ["family_name", "given_name", "mrn"]
        indexes = [models.Index(fields=["family_name", "given_name"])]

    def __str__(self) -> str:
        return f"{self.family_name.upper()}, {self.given_name} ({self.mrn})"

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def age(self) -> int:
        """Age in whole years today (in the site's time zone)."""
        return self.age_on(timezone.localdate())

    def age_on(self, day: date) -> int:
        """Age in whole years on ``day``."""
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


class CareTeamMembership(models.Model):
    class Role(models.TextChoices):
        RESPONSIBLE = "responsible", "Responsible clinician"
        MEMBER = "member", "Care-team member"

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="care_memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    added_at = models.DateTimeField(auto_now_add=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "user"], name="unique_care_team_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} -> {self.patient} ({self.get_role_display()})"


def import_upload_path(instance: PatientImport, filename: str) -> str:
    # Generated name; the uploaded name is kept only as a label.
    import uuid

    return f"imports/patients/{uuid.uuid4().hex}.csv"


class PatientImport(models.Model):
    """One bulk import of patients (a built-in data set or an uploaded CSV) and its outcome."""

    source = models.CharField(max_length=40, help_text="A built-in data set key, or 'csv'.")
    file = models.FileField(upload_to=import_upload_path, blank=True)
    original_name = models.CharField(max_length=200, blank=True)
    limit = models.PositiveIntegerField(null=True, blank=True)
    imported = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Patient import #{self.pk} ({self.original_name or self.source})"


class PortalAccount(models.Model):
    """The patient's own sign-in to the portal: one user per patient, holding only the
    patient role. Created by a clinician of the care team; revoking deactivates the user."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="portal_account")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="portal_account"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set when the patient first chooses a password through a link; from then on a new link
    # goes only to the patient's own e-mail address (a clinician must not be able to sign in
    # as the patient).
    activated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Portal account {self.user} for {self.patient.mrn}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_activated(self) -> bool:
        # Accounts activated before activated_at existed (or given a password by the demo
        # seed) count as activated too.
        return self.activated_at is not None or self.user.has_usable_password()


class PortalLink(models.Model):
    """One set-password link issued for a portal account: who issued it, when, and how it
    reached the patient. Only the newest link of an account works (the activation token
    is bound to it)."""

    class Channel(models.TextChoices):
        SHOWN = "shown", "Shown once to the issuing clinician"
        EMAIL = "email", "E-mailed to the patient only"

    account = models.ForeignKey(PortalAccount, on_delete=models.CASCADE, related_name="links")
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    issued_at = models.DateTimeField(auto_now_add=True)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # The address the link was sent to, if any (a SHOWN link is also e-mailed when the
    # patient has an address).
    emailed_to = models.EmailField(blank=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-pk"]

    def __str__(self) -> str:
        return f"Portal link #{self.pk} for {self.account.user} ({self.get_channel_display()})"
