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
    # Stored while no model that could classify it was in service: the scan is kept and listed
    # as waiting, and queued (this cleared) as soon as one is (scans_awaiting_model_queue).
    awaiting_model_since = models.DateTimeField(null=True, blank=True, db_index=True)
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
    # The calling AE title, or STOW:<sender name> for a study stored over DICOMweb.
    calling_ae = models.CharField(max_length=80, blank=True)
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
    # The sender's UIDs and study identifiers before de-identification
    # (diagnosis.imaging.originals.OriginalInstance), carried to the scan when the study is
    # assigned; never shown.
    original = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Instance #{self.pk} of {self.study}"


class DicomWebSender(models.Model):
    """A PACS or modality allowed to store studies over DICOMweb (STOW-RS). It authenticates
    with a revocable token of which only a hash is stored; hospital IT issues it."""

    name = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(max_length=12, unique=True)
    token_hash = models.CharField(max_length=64)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "DICOMweb sender"

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"


class StowStudy(models.Model):
    """A study a DICOMweb sender is storing, possibly over several STOW-RS requests (a PACS
    splits a large study): where its instances went, so that a request arriving within
    MEDAI_DICOM_STUDY_SETTLE_SECONDS of the last one adds to the same upload (and its still
    queued job) or the same waiting inbox study. Its row lock serialises concurrent requests
    for one study."""

    sender = models.ForeignKey(DicomWebSender, on_delete=models.CASCADE, related_name="+")
    # A keyed hash of the sender's Study Instance UID (an identifier, never stored as such).
    study_key = models.CharField(max_length=64)
    upload = models.ForeignKey(
        ScanUpload, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unmatched = models.ForeignKey(
        UnmatchedStudy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_received_at = models.DateTimeField()

    class Meta:
        verbose_name = "STOW-RS study"
        constraints = [
            models.UniqueConstraint(fields=["sender", "study_key"], name="one_stow_study_per_key")
        ]

    def __str__(self) -> str:
        return f"STOW-RS study #{self.pk} from {self.sender_id}"


class SourceInstance(models.Model):
    """A scan received over DICOM (or STOW-RS) as its sender knows it: the original UIDs and
    study identifiers, kept only so that results sent back to that same sender file under the
    right study. Never shown in a page, never exported anywhere else."""

    scan = models.OneToOneField(Scan, on_delete=models.CASCADE, related_name="source_instance")
    source = models.CharField(
        max_length=80,
        help_text="Who sent it: the calling AE title, or STOW:<sender name> for DICOMweb.",
    )
    sop_class_uid = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64)
    series_instance_uid = models.CharField(max_length=64)
    study_instance_uid = models.CharField(max_length=64)
    patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=200, blank=True)
    study_date = models.CharField(max_length=8, blank=True)
    study_time = models.CharField(max_length=16, blank=True)
    study_id = models.CharField(max_length=16, blank=True)
    accession_number = models.CharField(max_length=16, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["source", "study_instance_uid"])]

    def __str__(self) -> str:
        return f"Source of scan #{self.scan_id}"


class DicomDestination(models.Model):
    """A PACS that MedAI's results (SR, heat-map capture) are sent to, set up by hospital IT:
    by C-STORE or by DICOMweb STOW-RS. Studies from its ``source_ae_title`` go back under
    their original UIDs; every other study is sent as MedAI stores it (de-identified)."""

    class Kind(models.TextChoices):
        CSTORE = "cstore", "DICOM C-STORE"
        STOW = "stow", "DICOMweb STOW-RS"

    class Auth(models.TextChoices):
        NONE = "none", "None"
        BEARER = "bearer", "Bearer token"
        BASIC = "basic", "User name and password (basic)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.CSTORE)
    called_ae_title = models.CharField("called AE title", max_length=16, blank=True)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    calling_ae_title = models.CharField(
        "our calling AE title", max_length=16, default="MEDAI", blank=True
    )
    stow_url = models.URLField(
        "STOW-RS URL", max_length=500, blank=True, help_text="e.g. https://pacs/dicom-web/studies"
    )
    auth = models.CharField(max_length=8, choices=Auth.choices, default=Auth.NONE)
    username = models.CharField(max_length=150, blank=True)
    # The bearer token or the password; the admin never shows it back.
    secret = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    send_after_classification = models.BooleanField(default=True)
    send_after_review = models.BooleanField(default=True)
    source_ae_title = models.CharField(
        "source AE title",
        max_length=80,
        blank=True,
        help_text="The sender whose studies this PACS holds (its calling AE title, or "
        "STOW:<sender name> for a DICOMweb sender): their results go back under the original "
        "UIDs. Blank: every result is sent de-identified.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DicomSend(models.Model):
    """One revision of a prediction's results (SR, plus the heat-map capture when there is
    one) sent to one destination: its status, attempts and last error."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        CLASSIFICATION = "classification", "After classification"
        REVIEW = "review", "After review"
        MANUAL = "manual", "Sent again by a clinician"

    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="sends")
    destination = models.ForeignKey(
        DicomDestination, on_delete=models.CASCADE, related_name="sends"
    )
    # The SR revision: "not_reviewed::None" as the model answered, then one per review.
    revision = models.CharField(max_length=200)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    objects_sent = models.JSONField(
        default=list, blank=True, help_text="[{'object': 'SR'|'SC', 'sop_instance_uid': ...}]"
    )
    original_uids = models.BooleanField(default=False)
    job = models.ForeignKey("jobs.Job", null=True, on_delete=models.SET_NULL, related_name="+")
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["prediction", "destination", "revision"], name="one_send_per_revision"
            )
        ]

    def __str__(self) -> str:
        return f"Prediction #{self.prediction_id} to {self.destination} ({self.status})"
