"""Treatment options: a model's per-arm estimates for one patient, and the clinician's plan."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class TreatmentAssessment(models.Model):
    """One patient scored under every arm of a trial by one model version."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="treatment_assessments"
    )
    # Set by the job from the version it actually loaded (the active one may change between
    # the request and the worker picking it up).
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trial = models.CharField(max_length=40)
    inputs = models.JSONField(help_text="The validated covariates the model was given.")
    horizon = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    result = models.JSONField(default=dict, blank=True)
    explanation = models.JSONField(default=dict, blank=True)
    facts = models.JSONField(default=dict, blank=True)
    applicability = models.JSONField(
        default=dict,
        blank=True,
        help_text="Distance of the patient to the trial population and whether it is unlike it.",
    )
    job = models.ForeignKey("jobs.Job", null=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["patient", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.trial} assessment #{self.pk} ({self.patient.mrn})"

    @property
    def arm_labels(self) -> list[str]:
        """Arm labels in arm-index order (empty until the job has run)."""
        return [arm["label"] for arm in self.result.get("arms", [])]


class TreatmentPlan(models.Model):
    """The arm a clinician chose after reading an assessment, with their reasoning."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="treatment_plans"
    )
    assessment = models.ForeignKey(
        TreatmentAssessment, on_delete=models.PROTECT, related_name="plans"
    )
    arm = models.PositiveSmallIntegerField()
    arm_label = models.CharField(max_length=100)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Plan: {self.arm_label} ({self.patient.mrn})"


class CohortAnalysis(models.Model):
    """A researcher's aggregate analysis: a trial's effect heterogeneity + Qini curve under the
    active model (kind "cohort"), or the breast-cancer genomics prognosis model ("genomics")."""

    class Kind(models.TextChoices):
        COHORT = "cohort", "Treatment-effect heterogeneity"
        GENOMICS = "genomics", "Genomic profile"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.COHORT)
    trial = models.CharField(max_length=40, blank=True)
    # Set by the job from the version it actually loaded (cohort analyses only).
    model_version = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    covariate = models.CharField(max_length=60, blank=True)
    horizon = models.FloatField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    result = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("jobs.Job", null=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        if self.kind == self.Kind.GENOMICS:
            return f"Genomic profile #{self.pk}"
        return f"{self.trial} cohort analysis #{self.pk} ({self.covariate})"
