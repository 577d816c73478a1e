"""Every trained model version, its artifact, its metrics, and who put it into service."""

from __future__ import annotations

from django.conf import settings
from django.db import models


def artifact_path(instance: ModelVersion, filename: str) -> str:
    # Generated names only; the version number keeps artifacts of one task side by side.
    return f"models/{instance.task}/v{instance.version}-{instance.sha256[:12]}.bin"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready (not in service)"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        FAILED = "failed", "Failed"

    task = models.CharField(
        max_length=80, help_text="What the model does, e.g. diagnosis.pneumonia."
    )
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    artifact = models.FileField(upload_to=artifact_path, max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    params = models.JSONField("parameters", default=dict, blank=True)
    training_data = models.JSONField(
        default=dict, blank=True, help_text="Which data set (and split, hash) trained it."
    )
    metrics = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["task", "version"], name="unique_task_version"),
            # At most one model in service per task, enforced by the database itself.
            models.UniqueConstraint(
                fields=["task"],
                condition=models.Q(status="active"),
                name="one_active_version_per_task",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} v{self.version}"


class ModelActivation(models.Model):
    """History of which version was put into service, so a roll-back knows where to go."""

    task = models.CharField(max_length=80)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="activations")
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-activated_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version} activated {self.activated_at:%Y-%m-%d %H:%M}"


class ModelShadow(models.Model):
    """A period in which an approved version scores live traffic beside the active version,
    its answers stored (ShadowResult) and never shown to clinicians."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="shadows")
    # Denormalised from the version so "one running shadow per task" is a database constraint.
    task = models.CharField(max_length=80)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=200, blank=True)
    # Shadow scoring never fails a clinician's job: its failures are counted here instead.
    failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # One challenger per task at a time: two shadows would double the live work on
            # the worker and make "agreement with the active version" ambiguous to read.
            models.UniqueConstraint(
                fields=["task"],
                condition=models.Q(stopped_at__isnull=True),
                name="one_running_shadow_per_task",
            ),
        ]

    def __str__(self) -> str:
        return f"shadow of {self.version} from {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def running(self) -> bool:
        return self.stopped_at is None


class ShadowResult(models.Model):
    """One live item scored by a shadow version next to the active version's answer. The item
    is named by the domain's row (``item_type`` + ``item_id``, e.g. a prediction or an
    observation set), never by a patient identifier; staff read only aggregates of these."""

    shadow = models.ForeignKey(ModelShadow, on_delete=models.PROTECT, related_name="results")
    shadow_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    active_version = models.ForeignKey(
        ModelVersion, null=True, on_delete=models.PROTECT, related_name="+"
    )
    task = models.CharField(max_length=80)
    family = models.CharField(max_length=40)
    item_type = models.CharField(max_length=60)
    item_id = models.CharField(max_length=64)
    # Labels are what agreement is counted on: a class, a risk band, a recommended arm.
    shadow_label = models.CharField(max_length=80, blank=True)
    active_label = models.CharField(max_length=80, blank=True)
    shadow_score = models.FloatField(null=True, blank=True)
    active_score = models.FloatField(null=True, blank=True)
    shadow_output = models.JSONField(default=dict, blank=True)
    active_output = models.JSONField(default=dict, blank=True)
    agrees = models.BooleanField()
    clinician_label = models.CharField(max_length=80, blank=True)
    labelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A worker that dies and reruns scores nothing twice.
            models.UniqueConstraint(
                fields=["shadow_version", "item_type", "item_id"],
                name="one_shadow_result_per_item",
            ),
        ]
        indexes = [models.Index(fields=["item_type", "item_id"])]

    def __str__(self) -> str:
        return f"{self.shadow_version} on {self.item_type} #{self.item_id}"
