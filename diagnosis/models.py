"""Imaging: data sets for training, uploaded scans, the model's predictions and the
clinician's reviews of them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


def _generated(prefix: str, suffix: str) -> str:
    # Stored under generated names only; the uploaded name never reaches the file system.
    return f"{prefix}/{uuid.uuid4().hex}{suffix}"


class ImageDataset(models.Model):
    """A labelled image data set a model version can be trained on (MedMNIST-style .npz, a
    folder of labelled images, or clinicians' reviewed corrections)."""

    class Kind(models.TextChoices):
        NPZ = "npz", "MedMNIST-style .npz"
        FOLDER = "folder", "Folder of labelled images"
        REVIEWS = "reviews", "Clinicians' reviewed scans"

    class Status(models.TextChoices):
        CHECKING = "checking", "Being checked"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed its check"

    name = models.CharField(max_length=100, unique=True)
    task = models.CharField(
        max_length=80, help_text="The model-registry task it trains, e.g. diagnosis.pneumonia."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    path = models.CharField(
        max_length=500,
        blank=True,
        help_text="Server path of the data, or its place under MEDIA_ROOT when uploaded.",
    )
    uploaded = models.BooleanField(
        default=False, help_text="Uploaded from the browser and kept under MEDIA_ROOT/datasets/."
    )
    # New data sets are loaded and checked by a job before anything may train on them.
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CHECKING)
    message = models.TextField(blank=True, help_text="Why the check failed.")
    preview = models.JSONField(default=dict, blank=True)
    file = models.FileField(upload_to="datasets/", blank=True)
    class_names = models.JSONField(default=list)
    split_sizes = models.JSONField(default=dict)
    image_shape = models.JSONField(default=list)
    sha256 = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    attribution = models.TextField(blank=True)
    # The input contract models trained on it carry (diagnosis.imaging.contract), as the model
    # admin stated it or the MedMNIST collection's default; {} = none stated (only channels
    # and size are then checked). min_size/channels None = the training images' own.
    contract = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ScanUpload(models.Model):
    """One drag-and-drop of files for a patient: what was accepted, what was rejected, why."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    task = models.CharField(max_length=80)
    rejected = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Upload #{self.pk} for {self.patient.mrn}"


def scan_file_path(instance: Scan, filename: str) -> str:
    return _generated("scans", ".dcm" if instance.kind == Scan.Kind.DICOM else ".png")


def scan_display_path(instance: Scan, filename: str) -> str:
    return _generated("scans/display", ".npz")


class Scan(models.Model):
    class Kind(models.TextChoices):
        PNG = "png", "PNG"
        JPEG = "jpeg", "JPEG"
        DICOM = "dicom", "DICOM"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="scans")
    upload = models.ForeignKey(ScanUpload, on_delete=models.PROTECT, related_name="scans")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The de-identified DICOM, or the image re-encoded as PNG (which drops any metadata).
    file = models.FileField(upload_to=scan_file_path, max_length=200)
    # Frames prepared for the viewer and the model (float16 .npz), made once at upload.
    display = models.FileField(upload_to=scan_display_path, max_length=200)
    sha256 = models.CharField(max_length=64)
    original_name = models.CharField(max_length=255, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    rows = models.PositiveIntegerField()
    cols = models.PositiveIntegerField()
    frames = models.PositiveIntegerField(default=1)
    is_color = models.BooleanField(default=False)
    transfer_syntax = models.CharField(max_length=120, blank=True)
    info = models.JSONField(default=dict, blank=True)
    deid_report = models.JSONField(default=dict, blank=True)
    # Burned-in text: a scan that may show identifying text in its pixels (see
    # diagnosis/imaging/burned_in.py) is stored de-identified but held, neither classified
    # nor listed, until a clinician of the care team confirms that none is visible.
    held = models.BooleanField(default=False, db_index=True)
    hold_reason = models.TextField(blank=True)
    hold_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    hold_confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["patient", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} scan #{self.pk} ({self.patient.mrn})"


def heatmap_path(instance: Prediction, filename: str) -> str:
    return _generated("predictions", ".npz")


class Prediction(models.Model):
    """One model version's answer for one scan. An answer outside the model's scope (refused by
    the input contract's metadata gate or by the learned out-of-distribution score) carries the
    reason and no probabilities; a clinician may ask for a score anyway, which fills the
    probabilities and records who asked, when and why (the override)."""

    class Scope(models.TextChoices):
        IN_SCOPE = "in_scope", "In scope"
        OUT_OF_SCOPE = "out_of_scope", "Outside the model's scope"
        # Versions trained before detectors existed, and rows stored before this field.
        UNCHECKED = "unchecked", "Scope not checked"

    class ScopeCheck(models.TextChoices):
        GATE = "gate", "Input contract (metadata)"
        OOD = "ood", "Learned out-of-distribution score"

    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="+"
    )
    job = models.ForeignKey("jobs.Job", null=True, on_delete=models.SET_NULL, related_name="+")
    class_names = models.JSONField()
    # Empty (and predicted_class blank, risk/confidence/uncertainty None) for an out-of-scope
    # answer until a clinician overrides.
    probabilities = models.JSONField(default=list, blank=True)
    predicted_class = models.CharField(max_length=100, blank=True)
    predicted_index = models.PositiveIntegerField(null=True, blank=True)
    # The probability of the first class that is not the data set's first ("normal") class:
    # the number the worklist sorts by (None: not scored, never sorted by risk).
    risk = models.FloatField(db_index=True, null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    uncertainty = models.FloatField(
        null=True, blank=True, help_text="Normalised predictive entropy, 0 certain, 1 uniform."
    )
    scope = models.CharField(
        max_length=12, choices=Scope.choices, default=Scope.UNCHECKED, db_index=True
    )
    scope_check = models.CharField(max_length=8, choices=ScopeCheck.choices, blank=True)
    scope_reason = models.TextField(
        blank=True, help_text="Why the scan is outside the model's scope, in a clinician's words."
    )
    ood_score = models.FloatField(null=True, blank=True)
    ood_threshold = models.FloatField(null=True, blank=True)
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The clinician who asked for a score outside the model's scope.",
    )
    override_at = models.DateTimeField(null=True, blank=True)
    override_reason = models.TextField(blank=True)
    # The binary decision threshold the model version applied (None: arg-max of classes).
    threshold = models.FloatField(null=True, blank=True)
    key_frame = models.PositiveIntegerField(default=0)
    frames = models.JSONField(default=list, blank=True)
    heatmaps = models.FileField(upload_to=heatmap_path, max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A scan is never scored twice by the same model version, even when a worker dies
            # and its task is delivered again.
            models.UniqueConstraint(
                fields=["scan", "model_version"], name="one_prediction_per_version"
            )
        ]

    def __str__(self) -> str:
        if not self.scored:
            return f"outside the model's scope for scan #{self.scan_id}"
        return f"{self.predicted_class} ({self.confidence:.0%}) for scan #{self.scan_id}"

    @property
    def scored(self) -> bool:
        """Whether this answer has probabilities (in scope, unchecked, or overridden)."""
        return self.risk is not None

    @property
    def overridden(self) -> bool:
        return self.override_at is not None

    @property
    def scope_why(self) -> str:
        """The reason without its "not scored: " lead, for an answer scored anyway."""
        reason = self.scope_reason
        return reason[len("not scored: ") :] if reason.startswith("not scored: ") else reason


class Review(models.Model):
    class Verdict(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        CORRECTED = "corrected", "Corrected"

    prediction = models.OneToOneField(Prediction, on_delete=models.PROTECT, related_name="review")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    label = models.CharField(max_length=100, help_text="The clinician's label for the scan.")
    note = models.TextField(blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField()

    class Meta:
        ordering = ["-reviewed_at"]

    def __str__(self) -> str:
        return f"{self.get_verdict_display()}: {self.label}"


def unmatched_file_path(instance: UnmatchedInstance, filename: str) -> str:
    return _generated("inbox", ".dcm")


class UnmatchedStudy(models.Model):
    """A study received over DICOM that no MedAI patient matched with certainty (no match, an
    ambiguous one, a failed name/birth-date check, a patient in no care team). Its files are
    stored de-identified; a clinician assigns it to a patient of their care teams."""

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting for a patient"
        ASSIGNED = "assigned", "Assigned"
        # Hospital IT discarded it (it resembled no care team's patient); files deleted.
        DISCARDED = "discarded", "Discarded"

    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.WAITING, db_index=True
    )
    reason = models.TextField(help_text="Why no patient was matched.")
    calling_ae = models.CharField(max_length=16, blank=True)
    # The sender's identifiers, kept only so that a clinician can find the patient; cleared
    # when the study is assigned.
    patient_id = models.CharField(max_length=64, blank=True)
    issuer = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=200, blank=True)
    birth_date = models.CharField(max_length=8, blank=True)
    study_date = models.CharField(max_length=8, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    rejected = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    assigned_patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    upload = models.ForeignKey(
        ScanUpload, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "unmatched studies"

    def __str__(self) -> str:
        return f"Unmatched study #{self.pk}"


class UnmatchedInstance(models.Model):
    """One de-identified instance of an unmatched study, waiting with it."""

    study = models.ForeignKey(UnmatchedStudy, on_delete=models.CASCADE, related_name="instances")
    file = models.FileField(upload_to=unmatched_file_path, max_length=200)
    sha256 = models.CharField(max_length=64)
    original_name = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Instance #{self.pk} of {self.study}"
