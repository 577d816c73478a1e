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
