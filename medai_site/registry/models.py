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
    # The latest approval (the ModelApproval rows keep every one): set only by
    # model_version_approve, never by activation, so "approved" always means a second person.
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
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

    @property
    def status_label(self) -> str:
        """The status as pages show it: a ready version nobody has approved yet says it
        awaits approval (it cannot go into service before, bar a task's bootstrap)."""
        if self.status == self.Status.READY and self.approved_by_id is None:
            return "Ready (awaiting approval)"
        return self.get_status_display()


class ModelActivation(models.Model):
    """History of which version was put into service, so a roll-back knows where to go."""

    class Kind(models.TextChoices):
        ACTIVATED = "activated", "Activated"
        ROLLED_BACK = "rolled_back", "Rolled back"
        BOOTSTRAP = "bootstrap", "Activated without approval (bootstrap: no version in service)"

    task = models.CharField(max_length=80)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="activations")
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_at = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.ACTIVATED)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-activated_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version} activated {self.activated_at:%Y-%m-%d %H:%M}"


class ModelHeldOut(models.Model):
    """A task's locked held-out set: fixed by the first validation of the task, and every later
    version of the task must be scored on exactly these items (same sha256) to be compared."""

    task = models.CharField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="Of the item ids, in scoring order.")
    source = models.JSONField(default=dict, help_text="How the family finds this set again.")
    locked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} ({self.size} items, {self.sha256[:12]})"


class ModelValidation(models.Model):
    """One validation of a version on its task's locked held-out set, with the paired
    comparison against the version in service at the time. Written by a registry.validate
    job in the same transaction as the job's success."""

    class Status(models.TextChoices):
        PENDING = "pending", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        ERROR = "error", "Could not be run"

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="validations")
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    run_seconds = models.FloatField(null=True, blank=True)
    held_out = models.ForeignKey(
        ModelHeldOut, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # What the set the hook produced was called, even when it differed from the locked one.
    held_out_ref = models.JSONField(default=dict, blank=True)
    metric = models.CharField(max_length=20, blank=True)
    higher_is_better = models.BooleanField(default=True)
    value = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    floor = models.FloatField(null=True, blank=True)
    compared_to = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    compared_value = models.FloatField(null=True, blank=True)
    diff = models.FloatField(null=True, blank=True)
    diff_low = models.FloatField(null=True, blank=True)
    diff_high = models.FloatField(null=True, blank=True)
    paired = models.BooleanField(default=True)
    passed = models.BooleanField(null=True)
    verdict = models.TextField(blank=True, help_text="The rule applied and its outcome.")
    error = models.TextField(blank=True)
    # Per-item outputs (bounded by the family's held-out size), for comparing later versions
    # without scoring this one again; secondary metrics and caveats.
    outputs = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # A double click or a second registration hook queues no second run.
            models.UniqueConstraint(
                fields=["version"],
                condition=models.Q(status="pending"),
                name="one_pending_validation_per_version",
            ),
        ]

    def __str__(self) -> str:
        return f"Validation of {self.version} ({self.get_status_display().lower()})"


class ModelApproval(models.Model):
    """A model admin's approval of a version (four eyes: never its creator), with the reason;
    ``override`` records approving one whose validation failed or had not finished."""

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="approvals")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField()
    reason = models.TextField()
    override = models.BooleanField(default=False)
    validation = models.ForeignKey(
        ModelValidation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The validation's state when approved ("passed", "failed", "pending", "none").
    validation_status = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["-approved_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version} approved by {self.approved_by}"


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
