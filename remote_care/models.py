"""Remote monitoring: patients' devices, the vital signs they post, NEWS2 per observation set,
the alerts the server raises from them, and the messages between patients and care teams."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Monitoring(models.Model):
    """A patient under remote monitoring: the clinical choices that scoring depends on, and
    the alerting state carried between observation batches."""

    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.CASCADE, related_name="monitoring"
    )
    # SpO2 scale 2 is a clinician's decision (hypercapnic respiratory failure), never inferred.
    spo2_scale = models.PositiveSmallIntegerField(
        default=1, choices=[(1, "Scale 1"), (2, "Scale 2")]
    )
    spo2_scale_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    alert_state = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Monitoring of {self.patient.mrn}"


class Device(models.Model):
    """A device registered to one patient; it authenticates with a revocable token of which
    only a hash is stored."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="devices"
    )
    label = models.CharField(max_length=100)
    token_prefix = models.CharField(max_length=12, unique=True)
    token_hash = models.CharField(max_length=64)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label} ({self.token_prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# The vital signs an Observation holds (NEWS2's inputs), as field names.
OBSERVATION_VITALS = (
    "heart_rate",
    "spo2",
    "respiratory_rate",
    "temperature",
    "systolic_bp",
    "diastolic_bp",
    "consciousness",
    "on_oxygen",
)


class Observation(models.Model):
    """One set of vital signs taken at the device's timestamp, with its NEWS2."""

    class Consciousness(models.TextChoices):
        ALERT = "A", "Alert"
        CONFUSION = "C", "New confusion"
        VOICE = "V", "Responds to voice"
        PAIN = "P", "Responds to pain"
        UNRESPONSIVE = "U", "Unresponsive"

    # No single-column indexes on the two keys: (patient, taken_at) and the unique (device,
    # taken_at) lead with them and serve every lookup, and each index is paid on every insert.
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="observations", db_index=False
    )
    device = models.ForeignKey(
        Device, on_delete=models.PROTECT, related_name="observations", db_index=False
    )
    taken_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    heart_rate = models.FloatField(null=True, blank=True)
    spo2 = models.FloatField(null=True, blank=True)
    respiratory_rate = models.FloatField(null=True, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    systolic_bp = models.FloatField(null=True, blank=True)
    diastolic_bp = models.FloatField(null=True, blank=True)
    consciousness = models.CharField(max_length=1, choices=Consciousness.choices, blank=True)
    on_oxygen = models.BooleanField(null=True, blank=True)
    news2_total = models.PositiveSmallIntegerField(null=True, blank=True)
    news2_partial = models.BooleanField(default=False)
    news2 = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-taken_at"]
        constraints = [
            # The natural key: a device cannot take two observation sets at one instant, so a
            # resent batch stores nothing twice.
            models.UniqueConstraint(fields=["device", "taken_at"], name="one_set_per_device_time")
        ]
        indexes = [models.Index(fields=["patient", "taken_at"])]

    def __str__(self) -> str:
        return f"{self.patient.mrn} {self.taken_at:%Y-%m-%d %H:%M:%S}"


class VitalRollup(models.Model):
    """One vital sign of one patient over one minute or one hour (the UTC bucket's start):
    how many values, their sum, minimum and maximum. Derived from Observation by the roll-up
    services (recomputed per touched bucket, so refreshing twice stores what once does); the
    vitals chart reads these for ranges too long to read raw."""

    class Level(models.TextChoices):
        MINUTE = "minute", "Per minute"
        HOUR = "hour", "Per hour"

    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="+")
    level = models.CharField(max_length=6, choices=Level.choices)
    # The vitals chart's series key: an Observation vital field, or "news2" (news2_total).
    vital = models.CharField(max_length=20)
    bucket = models.DateTimeField()
    n = models.PositiveIntegerField()
    total = models.FloatField()
    low = models.FloatField()
    high = models.FloatField()

    class Meta:
        constraints = [
            # Bucket before vital: the chart reads every vital of a time range in one scan.
            models.UniqueConstraint(
                fields=["patient", "level", "bucket", "vital"], name="one_rollup_per_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.vital} {self.level} {self.bucket:%Y-%m-%d %H:%M}"

    @property
    def mean(self) -> float:
        return self.total / self.n


class VitalRollupCursor(models.Model):
    """How far the roll-up sweep has read the observations, by primary key (one row)."""

    name = models.CharField(max_length=40, unique=True)
    last_observation = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}: observations up to {self.last_observation}"


class Alert(models.Model):
    class Level(models.TextChoices):
        RED_SCORE = "RED_SCORE", "Single parameter scored 3"
        URGENT = "URGENT", "NEWS2 5 or more (urgent)"
        EMERGENCY = "EMERGENCY", "NEWS2 7 or more (emergency)"
        TREND = "TREND", "Sustained rise"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        ESCALATED = "escalated", "Escalated"
        RESOLVED = "resolved", "Resolved"

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="alerts")
    # No database constraint: Observation is partitioned by month on PostgreSQL, and a foreign
    # key must name the whole key of its target, (id, taken_at). Django's collector still
    # applies on_delete in the ORM; detaching a month refuses while rows here point into it.
    observation = models.ForeignKey(
        Observation, on_delete=models.PROTECT, related_name="alerts", db_constraint=False
    )
    level = models.CharField(max_length=12, choices=Level.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    news2_total = models.PositiveSmallIntegerField()
    reason = models.TextField()
    response = models.TextField(blank=True)
    raised_at = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        indexes = [models.Index(fields=["patient", "status"])]

    def __str__(self) -> str:
        return f"{self.get_level_display()} for {self.patient.mrn}"


class Waveform(models.Model):
    """A raw ECG or PPG recording a device posted, stored compressed (float32, zlib), with the
    HR/HRV and quality its analysis job derived."""

    class Kind(models.TextChoices):
        ECG = "ecg", "ECG"
        PPG = "ppg", "PPG"

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="waveforms"
    )
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="waveforms")
    kind = models.CharField(max_length=3, choices=Kind.choices)
    fs = models.FloatField(help_text="Sampling rate in Hz.")
    started_at = models.DateTimeField()
    n_samples = models.PositiveIntegerField()
    samples = models.BinaryField(help_text="zlib-compressed little-endian float32 samples.")
    derived = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # No database constraint: Observation is partitioned by month on PostgreSQL, and a foreign
    # key must name the whole key of its target, (id, taken_at). Django's collector still
    # applies on_delete in the ORM; detaching a month refuses while rows here point into it.
    observation = models.ForeignKey(
        Observation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["patient", "started_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.patient.mrn} {self.started_at:%Y-%m-%d %H:%M}"


def message_photo_path(message: Message, filename: str) -> str:
    # The patient's name never appears in a stored path.
    return f"messages/{message.thread.patient_id}/{uuid.uuid4().hex}.jpg"


class Thread(models.Model):
    """A conversation between a patient and their care team."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="threads"
    )
    subject = models.CharField(max_length=200)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_message_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_message_at"]
        indexes = [models.Index(fields=["patient", "-last_message_at"])]

    def __str__(self) -> str:
        return self.subject


class Message(models.Model):
    """One message in a thread: text, a photo, or both. Never edited once sent."""

    thread = models.ForeignKey(Thread, on_delete=models.PROTECT, related_name="messages")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Whether the sender wrote as the patient (portal) or as a member of the care team.
    from_patient = models.BooleanField()
    body = models.TextField(blank=True)
    photo = models.FileField(upload_to=message_photo_path, blank=True)
    photo_name = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(db_index=True)
    # Set when a clinician sent the photo on to diagnosis as a scan.
    scan = models.ForeignKey(
        "diagnosis.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["sent_at", "pk"]
        indexes = [models.Index(fields=["thread", "sent_at"])]

    def __str__(self) -> str:
        return f"Message {self.pk} in thread {self.thread_id}"


class ThreadRead(models.Model):
    """How far one user has read a thread: messages after ``last_read_at`` are unread."""

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_read_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["thread", "user"], name="one_read_mark_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} read thread {self.thread_id} to {self.last_read_at:%Y-%m-%d %H:%M}"


class RiskScore(models.Model):
    """The deterioration model's risk for a patient as of one observation set (the latest at
    scoring time), by one model version. Derived data: scoring again stores nothing twice."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="risk_scores"
    )
    # No database constraint: Observation is partitioned by month on PostgreSQL, and a foreign
    # key must name the whole key of its target, (id, taken_at). Django's collector still
    # applies on_delete in the ORM; detaching a month refuses while rows here point into it.
    observation = models.ForeignKey(
        Observation, on_delete=models.CASCADE, related_name="risk_scores", db_constraint=False
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="+"
    )
    taken_at = models.DateTimeField(help_text="The observation set's time (denormalised).")
    # None when the set could not be scored: see insufficient_reason.
    risk = models.FloatField(null=True, blank=True)
    # How much of the model's 48-hour window had data: few hours mean a less certain score.
    hours_observed = models.PositiveSmallIntegerField()
    inputs = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the score had: hours covered, hours with data, vital signs present.",
    )
    insufficient_reason = models.CharField(
        max_length=500,
        blank=True,
        help_text="Why no risk was given (too little data, a value outside the training ranges).",
    )
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-taken_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["observation", "model_version"], name="one_risk_per_set_and_version"
            )
        ]
        indexes = [models.Index(fields=["patient", "-taken_at"])]

    def __str__(self) -> str:
        if self.risk is None:
            return f"{self.patient_id} {self.taken_at:%Y-%m-%d %H:%M} insufficient data"
        return f"{self.patient_id} {self.taken_at:%Y-%m-%d %H:%M} risk {self.risk:.2f}"

    @property
    def inputs_summary(self) -> str:
        """'6 h covered, 4 h with data; heart rate, SpO2, ...': what the score had."""
        i = self.inputs or {}
        if not i:
            return f"{self.hours_observed} h of data in its 48-h window"
        channels = ", ".join(i.get("channels", [])) or "no vital signs"
        return (
            f"{i.get('hours_covered', 0):g} h covered, {i.get('hours_with_data', 0)} h with "
            f"data in its 48-h window; {channels}"
        )


class ProgressionAnalysis(models.Model):
    """A researcher's comparison of disease-progression models on one data set, with a
    forecast (and its interval) for every patient of a longitudinal cohort."""

    class Dataset(models.TextChoices):
        PBCSEQ = "pbcseq", "PBC follow-up visits (Mayo Clinic, serum bilirubin)"
        DIABETES = "diabetes", "Diabetes progression after one year (Efron et al.)"

    dataset = models.CharField(max_length=20, choices=Dataset.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    settings = models.JSONField(default=dict, blank=True)
    results = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_dataset_display()} ({self.created_at:%Y-%m-%d})"


class PopulationPatientDay(models.Model):
    """Roll-up of one patient's observation sets on one local day (the population page's
    unit), recomputed from the raw rows by ``analytics_rollup_refresh``. The cohort keys are
    the patient's as of that refresh. ``hist`` holds, per flavour ("c" complete sets, "p"
    partial sets), the scored sets per NEWS2 total, the red-score sets (total 3-4 with one
    parameter scoring 3) and the unscored sets, under "a" the alerts raised that day per
    level and under "k", per level, its acknowledged ones per delay in microseconds (from
    raising to acknowledging; keys as strings); ``mask_any`` / ``mask_complete`` have bit t
    set when a set scored t (bits MASK_* below for bands and flags), so exact distinct-patient
    counts over a range are one GROUP BY patient over this table."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="population_days"
    )
    day = models.DateField()
    sex = models.CharField(max_length=10, blank=True)
    age_band = models.CharField(max_length=10)
    spo2_scale = models.PositiveSmallIntegerField(null=True, blank=True)
    #: The whole care team: member user ids ascending, "r" marking the responsible ones.
    team_set = models.CharField(max_length=255, blank=True)
    sets = models.PositiveIntegerField(default=0)
    hist = models.JSONField(default=dict)
    mask_any = models.BigIntegerField(default=0)
    mask_complete = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "day"], name="one_rollup_per_patient_day")
        ]
        indexes = [models.Index(fields=["day", "patient"], name="rc_popday_day_patient")]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.day}: {self.sets} sets"


class PopulationPatientWeek(models.Model):
    """One patient's PopulationPatientDay rows of one ISO week (``week``: its Monday) with
    the same cohort keys, their NEWS2 masks OR-ed: exact distinct-patient counts over a
    range read these for the weeks it covers whole (a seventh of the patient-day rows) and
    the patient-days only for its clipped first and last weeks. Rewritten from the
    patient-days whenever any of the week's patient-days is."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="population_weeks"
    )
    week = models.DateField()
    sex = models.CharField(max_length=10, blank=True)
    age_band = models.CharField(max_length=10)
    spo2_scale = models.PositiveSmallIntegerField(null=True, blank=True)
    team_set = models.CharField(max_length=255, blank=True)
    days = models.PositiveSmallIntegerField(default=0)
    mask_any = models.BigIntegerField(default=0)
    mask_complete = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["week", "patient"], name="rc_popweek_week_patient")]

    def __str__(self) -> str:
        return f"{self.patient_id} week of {self.week}: {self.days} days"


class PopulationDayCell(models.Model):
    """Roll-up of one local day x cohort keys (sex, age band, SpO2 scale, care-team set) x
    flavour (``partial``: None every set, False complete sets, True partial sets) x ``kind``
    (ALL; TOTAL with ``value`` the NEWS2 total; BAND with ``value`` the index in RISK_BANDS;
    HIGH / REST: scored sets at 7+ / below): sets, and ``patients``, the patient-days with
    such a set (exact distinct patients of the day: a patient-day has one key). Alerts,
    flavour None only: ALERT with ``value`` the index in ALERT_LEVELS, ALERTED any level,
    ACKED / UNACKED the alerts of level ``value`` acknowledged / not (yet); ``sets`` counts
    the alerts, ``patients`` the patient-days alerted. Rebuilt per day from
    PopulationPatientDay, so its size depends on days x keys, not on the rows."""

    class Kind(models.TextChoices):
        ALL = "all"
        TOTAL = "total"
        BAND = "band"
        HIGH = "high"
        REST = "rest"
        ALERT = "alert"
        ALERTED = "alerted"
        ACKED = "acked"
        UNACKED = "unacked"

    day = models.DateField()
    sex = models.CharField(max_length=10, blank=True)
    age_band = models.CharField(max_length=10)
    spo2_scale = models.PositiveSmallIntegerField(null=True, blank=True)
    team_set = models.CharField(max_length=255, blank=True)
    partial = models.BooleanField(null=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.SmallIntegerField(default=0)
    sets = models.PositiveIntegerField(default=0)
    patients = models.PositiveIntegerField(default=0)
    scored = models.PositiveIntegerField(default=0)
    news2_sum = models.PositiveIntegerField(default=0)
    high = models.PositiveIntegerField(default=0)
    elevated = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            # The refreshes: a day's cells.
            models.Index(fields=["day", "kind"], name="rc_popcell_day_kind"),
            # The page: one kind and flavour over a range (the day-first index walks every
            # kind's entries of the range, so each query read the whole table).
            models.Index(fields=["kind", "partial", "day"], name="rc_popcell_kind_partial_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.value}: {self.sets} sets"


class PopulationAckDelay(models.Model):
    """Roll-up of the acknowledged alerts of one local day (raised) x cohort keys x level
    (``level``: the index in ALERT_LEVELS) x delay from raising to acknowledging, exact to
    the microsecond (``delay_us``): how many (``alerts``). The multiset of delays the
    percentiles of time to acknowledge read, so they equal the raw query's; rebuilt with the
    day's cells from PopulationPatientDay.hist["k"]."""

    day = models.DateField()
    sex = models.CharField(max_length=10, blank=True)
    age_band = models.CharField(max_length=10)
    spo2_scale = models.PositiveSmallIntegerField(null=True, blank=True)
    team_set = models.CharField(max_length=255, blank=True)
    level = models.SmallIntegerField()
    delay_us = models.BigIntegerField()
    alerts = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day"], name="rc_popackdelay_day")]

    def __str__(self) -> str:
        return f"{self.day} level {self.level}: {self.alerts} after {self.delay_us} us"


class PopulationRollupState(models.Model):
    """The catch-up job's watermark: the highest observation id it has rolled up."""

    name = models.CharField(max_length=40, unique=True)
    last_observation_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.last_observation_id}"
