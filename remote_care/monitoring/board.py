"""Reads behind the monitoring board and the vitals page, scoped through the patient selector.

Everything is computed in the database: the latest observation per patient and the open alerts
are correlated subqueries, the 24-hour NEWS2 sparkline is an hourly aggregate, so a board never
loops in Python over a patient's (1 Hz, possibly millions of) observations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone
from numpy.typing import NDArray

from medai_site.patients.models import Patient
from medai_site.patients.selectors import patient_get, patient_list
from remote_care.models import OBSERVATION_VITALS, Alert, Monitoring, Observation, VitalRollup
from remote_care.monitoring.services import vitals_rollup_catch_up
from remote_care.monitoring.timeseries import BUCKET_SECONDS, EpochSeconds
from remote_care.physiology.downsample import Downsampled, downsample

# Open alerts rank the board: emergency first, then urgent, a single red score, a trend.
ALERT_RANK = {
    Alert.Level.EMERGENCY: 4,
    Alert.Level.URGENT: 3,
    Alert.Level.RED_SCORE: 2,
    Alert.Level.TREND: 1,
}
RANK_LEVEL = {rank: level for level, rank in ALERT_RANK.items()}

#: The vital-sign series on the vitals page: (key, model field, label, unit).
VITAL_SERIES: tuple[tuple[str, str, str, str], ...] = (
    ("heart_rate", "heart_rate", "Heart rate", "/min"),
    ("spo2", "spo2", "SpO2", "%"),
    ("respiratory_rate", "respiratory_rate", "Respiration rate", "/min"),
    ("temperature", "temperature", "Temperature", "°C"),
    ("systolic_bp", "systolic_bp", "Systolic BP", "mmHg"),
    ("diastolic_bp", "diastolic_bp", "Diastolic BP", "mmHg"),
    ("news2", "news2_total", "NEWS2", ""),
)
_LATEST_FIELDS = ("pk", "taken_at", "news2_total", "news2_partial", "news2", *OBSERVATION_VITALS)


@dataclass
class BoardRow:
    """One monitored patient on the board: latest set, open alerts, 24-hour NEWS2 points."""

    patient: Patient
    latest: Observation | None
    open_alerts: int
    top_alert_level: str
    sparkline: list[tuple[datetime, int]] = field(default_factory=list)
    spark: dict[str, Any] = field(default_factory=dict)  # SVG geometry, set by the view
    # The deterioration model's latest score (None without an active model or a score yet).
    risk: Any = None

    @property
    def top_alert_label(self) -> str:
        return Alert.Level(self.top_alert_level).label if self.top_alert_level else ""


def _open_alerts(outer: str = "pk") -> QuerySet[Alert]:
    return Alert.objects.filter(patient=OuterRef(outer)).exclude(status=Alert.Status.RESOLVED)


def board_patients(*, user: Any) -> QuerySet[Patient]:
    """The user's monitored patients (a Monitoring row or any observation), annotated with the
    latest observation's pk and NEWS2, the open-alert count and top rank; board order."""
    latest = Observation.objects.filter(patient=OuterRef("pk")).order_by("-taken_at", "-pk")
    rank = (
        _open_alerts()
        .annotate(
            rank=Case(
                *(When(level=level, then=Value(r)) for level, r in ALERT_RANK.items()),
                default=Value(0),
                output_field=IntegerField(),
            )
        )
        .order_by("-rank")
        .values("rank")[:1]
    )
    count = _open_alerts().order_by().values("patient").annotate(n=Count("pk")).values("n")[:1]
    # pk__in rather than the scoped queryset itself: patient_list is DISTINCT, which would
    # force every ORDER BY expression into the select list.
    return (
        Patient.objects.filter(pk__in=patient_list(user=user).values("pk"))
        .filter(
            Q(Exists(Monitoring.objects.filter(patient=OuterRef("pk"))))
            | Q(Exists(Observation.objects.filter(patient=OuterRef("pk"))))
        )
        .annotate(
            latest_pk=Subquery(latest.values("pk")[:1]),
            latest_news2=Subquery(latest.values("news2_total")[:1]),
            alert_rank=Coalesce(Subquery(rank, output_field=IntegerField()), Value(0)),
            open_alerts=Coalesce(Subquery(count, output_field=IntegerField()), Value(0)),
        )
        .order_by(
            F("alert_rank").desc(),
            F("latest_news2").desc(nulls_last=True),
            "family_name",
            "given_name",
            "pk",
        )
    )


def board_rows(*, user: Any, now: datetime | None = None) -> list[BoardRow]:
    """Board rows in board order; three queries whatever the number of observations."""
    return board_rows_for(patients=list(board_patients(user=user)), now=now)


def board_rows_for(*, patients: list[Patient], now: datetime | None = None) -> list[BoardRow]:
    """Rows of ``patients`` (from board_patients, e.g. one page of it) in the order given;
    three queries whatever the number of observations."""
    now = now or timezone.now()
    latest_ids = [p.latest_pk for p in patients if p.latest_pk is not None]
    latest = {
        o.patient_id: o
        for o in Observation.objects.filter(pk__in=latest_ids).only("patient", *_LATEST_FIELDS)
    }
    spark: dict[int, list[tuple[datetime, int]]] = {p.pk: [] for p in patients}
    # Hourly worst NEWS2 over the last 24 h: the worst score is what a sparkline must not hide.
    hourly = (
        Observation.objects.filter(
            patient_id__in=spark.keys(),
            taken_at__gt=now - timedelta(hours=24),
            taken_at__lte=now,
            news2_total__isnull=False,
        )
        .annotate(hour=TruncHour("taken_at"))
        .order_by()
        .values("patient_id", "hour")
        .annotate(worst=Max("news2_total"))
        .order_by("patient_id", "hour")
    )
    for item in hourly:
        spark[item["patient_id"]].append((item["hour"], item["worst"]))
    from remote_care.risk.selectors import risk_latest_for

    risks = risk_latest_for([p.pk for p in patients])
    return [
        BoardRow(
            patient=p,
            latest=latest.get(p.pk),
            open_alerts=p.open_alerts,
            top_alert_level=RANK_LEVEL.get(p.alert_rank, ""),
            sparkline=spark[p.pk],
            risk=risks.get(p.pk),
        )
        for p in patients
    ]


# --- Vitals time series -------------------------------------------------------------------------


def wall_clock(epoch_seconds: NDArray[np.float64]) -> NDArray[np.datetime64]:
    """Epoch seconds -> naive datetime64[ms] wall-clock time in the current zone (what charts
    show, and how the chart sends zoomed ranges back); offsets are looked up once per quarter
    hour, which every zone's transitions fall on."""
    ms = np.round(epoch_seconds * 1000).astype(np.int64)
    quarter = ms // 900_000
    keys, inverse = np.unique(quarter, return_inverse=True)
    tz = timezone.get_current_timezone()
    offsets = np.array(
        [
            datetime.fromtimestamp(int(k) * 900, tz=UTC).astimezone(tz).utcoffset()
            // timedelta(milliseconds=1)
            for k in keys
        ],
        dtype=np.int64,
    )
    return (ms + offsets[inverse].reshape(ms.shape)).astype("datetime64[ms]")


@dataclass(frozen=True)
class VitalsWindow:
    """Validated query of the vitals data endpoint."""

    start: datetime
    end: datetime
    points: int
    method: str


#: Ranges up to RAW_SPAN are read raw (21,600 sets at 1 Hz), up to MINUTE_SPAN from the minute
#: roll-ups (2,880 buckets), longer ones from the hour roll-ups (2,208 for the widest range,
#: 92 days): whatever the range, a bounded number of rows is read, and a zoom into a shorter
#: range gets a finer level.
RAW_SPAN = timedelta(hours=6)
MINUTE_SPAN = timedelta(days=2)
_FIELDS = [f for _, f, _, _ in VITAL_SERIES]
_KEY_COLUMN = {key: col for col, (key, _, _, _) in enumerate(VITAL_SERIES)}


def vitals_level(window: VitalsWindow) -> str:
    """What the vitals chart reads for this window: "raw" observation sets, or the "minute" or
    "hour" roll-ups."""
    span = window.end - window.start
    return "raw" if span <= RAW_SPAN else "minute" if span <= MINUTE_SPAN else "hour"


def vitals_series(*, patient: Patient, window: VitalsWindow) -> dict[str, Downsampled]:
    """Each vital sign of the patient in [start, end], down-sampled to at most ``points``
    points per series (missing values skipped, not drawn as gaps; a bucket without readings
    has no point); ``n_in`` counts the values read. Short windows read the raw sets, longer
    ones each bucket's minimum and maximum from the roll-ups (vitals_level), after rolling up
    what the sweep has not reached yet."""
    level = vitals_level(window)
    if level == "raw":
        observations = Observation.objects.filter(
            patient=patient, taken_at__gte=window.start, taken_at__lte=window.end
        )
        times, values = _raw(observations)
        counts = np.count_nonzero(np.isfinite(values), axis=0)
    else:
        vitals_rollup_catch_up(patient_id=patient.pk)
        times, values, counts = _rolled_up(patient, window, level)
    out: dict[str, Downsampled] = {}
    for col, (key, _, _, _) in enumerate(VITAL_SERIES):
        y = values[:, col]
        keep = np.isfinite(y)
        reduced = downsample(times[keep], y[keep], window.points, method=window.method)
        out[key] = replace(reduced, n_in=int(counts[col]))
    return out


def _raw(observations: QuerySet[Observation]) -> tuple[NDArray[Any], NDArray[np.float64]]:
    # Seconds as a float, not datetimes: parsing timestamps in Python dominates otherwise.
    rows = observations.order_by("taken_at").values_list(EpochSeconds("taken_at"), *_FIELDS)
    table = np.array(list(rows.iterator(chunk_size=50_000)), dtype=np.float64)  # None -> nan
    table = table.reshape(-1, len(_FIELDS) + 1)
    return wall_clock(table[:, 0]), table[:, 1:]


def _rolled_up(
    patient: Patient, window: VitalsWindow, level: str
) -> tuple[NDArray[Any], NDArray[np.float64], NDArray[np.int64]]:
    """Per roll-up bucket overlapping the window, two rows at the bucket's middle (kept inside
    the window): every series' minimum, then its maximum (drawn as a vertical min-max stroke,
    the usual envelope of a dense signal; NaN for a series without values there); plus how
    many values each series had."""
    width = BUCKET_SECONDS[level]
    start, end = window.start.timestamp(), window.end.timestamp()
    first = datetime.fromtimestamp(start - start % width, tz=UTC)
    rows = list(
        VitalRollup.objects.filter(
            patient=patient, level=level, bucket__gte=first, bucket__lte=window.end
        )
        .order_by("bucket")
        .values_list(EpochSeconds("bucket"), "vital", "low", "high", "n")
    )
    known = [r for r in rows if r[1] in _KEY_COLUMN]
    epoch = np.array([r[0] for r in known], dtype=np.float64)
    column = np.array([_KEY_COLUMN[r[1]] for r in known], dtype=np.int64)
    buckets, row = np.unique(epoch, return_inverse=True)
    lo = np.full((buckets.size, len(VITAL_SERIES)), np.nan)
    hi = np.full((buckets.size, len(VITAL_SERIES)), np.nan)
    lo[row, column] = [r[2] for r in known]
    hi[row, column] = [r[3] for r in known]
    counts = np.bincount(column, weights=[r[4] for r in known], minlength=len(VITAL_SERIES))
    middle = np.clip(buckets + width / 2, start, end)
    values = np.empty((2 * buckets.size, len(VITAL_SERIES)), dtype=np.float64)
    values[0::2], values[1::2] = lo, hi
    return wall_clock(np.repeat(middle, 2)), values, counts.astype(np.int64)


def vitals_alerts(*, patient: Patient, window: VitalsWindow, limit: int = 500) -> list[Alert]:
    """The patient's alerts raised in the window, oldest first (at most ``limit``)."""
    return list(
        Alert.objects.filter(
            patient=patient, raised_at__gte=window.start, raised_at__lte=window.end
        ).order_by("raised_at")[:limit]
    )


def monitored_patient_get(*, user: Any, pk: int) -> Patient:
    """One of the user's patients; Patient.DoesNotExist for anyone else's."""
    return patient_get(user=user, pk=pk)


def local_naive(value: datetime) -> datetime:
    """``value`` as wall-clock time in the current zone without tzinfo (Plotly's date form)."""
    return timezone.localtime(value).replace(tzinfo=None)
