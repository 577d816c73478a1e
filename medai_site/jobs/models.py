"""One row per piece of asynchronous work, so its state survives any worker or broker."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=60)
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    # Reported while running (e.g. per-epoch loss and validation curves) for live charts.
    live = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, help_text="Shown to the person who started the job.")
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    cancel_requested = models.BooleanField(default=False)
    celery_id = models.CharField(max_length=64, blank=True)
    # The Celery node name (e.g. "ml@host") of the worker that claimed the latest attempt: the
    # fleet page counts a worker's jobs by it (Worker.name).
    worker = models.CharField(max_length=200, blank=True)
    # The queue the job was last sent to, chosen from its kind's needs and the live workers
    # at each enqueue (routing.job_route); empty until first sent.
    queue = models.CharField(max_length=20, blank=True)
    # The domain object the job works on (an import, a scan upload, a training run, ...).
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = GenericForeignKey("target_type", "target_id")

    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # Not to run before this (a received study still arriving in several requests); the
    # message is sent with the remaining countdown and the sweeper leaves it alone until then.
    not_before = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["queue", "status", "created_at"]),
            models.Index(fields=["kind", "finished_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0) & models.Q(progress__lte=100),
                name="job_progress_0_100",
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or self.heartbeat_at or self.started_at
        return (end - self.started_at).total_seconds()


class Worker(models.Model):
    """A Celery worker as it describes itself: written at its start and by its heartbeat
    thread (medai_site.jobs.worker_signals), never by the web process except to drain it."""

    # Celery's node name (``-n``), unique across the fleet: "ml@gpu-node-1".
    name = models.CharField(max_length=200, unique=True)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField(default=0)
    # The queues it consumes now (a drained worker reports none).
    queues = models.JSONField(default=list, blank=True)
    pool = models.CharField(max_length=40, blank=True)
    concurrency = models.PositiveIntegerField(default=1)
    # "cpu" or "gpu", with what the worker measured: {"gpu_name", "gpu_memory_mb"} or
    # {"cpu_model", "cpu_cores", "memory_mb"}.
    device_kind = models.CharField(max_length=10, default="cpu")
    device = models.JSONField(default=dict, blank=True)
    # What routing may count on: ["cpu"] or ["cpu", "gpu"]; detected, or declared by ops with
    # MEDAI_WORKER_RESOURCES (then ``resources_declared`` says so on the fleet page).
    resources = models.JSONField(default=list, blank=True)
    resources_declared = models.BooleanField(default=False)
    memory_mb = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField()
    # Set by a clean shutdown; a killed worker is offline by the age of its heartbeat.
    stopped_at = models.DateTimeField(null=True, blank=True)
    draining = models.BooleanField(default=False)
    drained_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_gpu(self) -> bool:
        return "gpu" in (self.resources or [])
