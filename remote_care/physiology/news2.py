"""National Early Warning Score 2 (NEWS2) and a pure alerting policy built on it.

Source: Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the
assessment of acute-illness severity in the NHS. Updated report of a working party. London: RCP,
December 2017. "Chart 1: The NEWS scoring system" gives the band tables encoded below as data;
"Chart 2: NEWS thresholds and triggers" gives the clinical-risk bands; "Chart 4: Clinical response
to the NEWS trigger thresholds" gives the response text. References below are to those charts.

Resolution rule (decided here; the chart is silent): the chart is written at the resolution the
observations are charted at (whole breaths, %, mmHg, beats, and temperature to 0.1 °C). Every
value is first rounded half-up to that resolution (a temperature of 35.04 is charted 35.0 and
scores 3; 35.05 is charted 35.1 and scores 1), then looked up in bands whose bounds are inclusive
at both ends and tile the grid without holes or overlaps (checked at import).

Nothing here imports Django: dataclasses in, dataclasses out (each with ``to_dict()``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum, StrEnum
from typing import Any

__all__ = [
    "ACVPU",
    "Alert",
    "AlertDecision",
    "AlertKind",
    "AlertPolicy",
    "AlertState",
    "Band",
    "BAND_TABLES",
    "ClinicalRisk",
    "News2Result",
    "Observation",
    "Parameter",
    "ParameterScore",
    "ScoredSet",
    "evaluate_alerts",
    "replay_alerts",
    "risk_for",
    "score_news2",
    "trend_rise",
]


# --------------------------------------------------------------------------------------------
# The chart as data
# --------------------------------------------------------------------------------------------


class Parameter(StrEnum):
    """The seven NEWS2 physiological parameters (Chart 1 rows; SpO2 has two scales)."""

    RESPIRATION_RATE = "respiration_rate"
    SPO2 = "spo2"
    AIR_OR_OXYGEN = "air_or_oxygen"
    SYSTOLIC_BP = "systolic_bp"
    PULSE = "pulse"
    CONSCIOUSNESS = "consciousness"
    TEMPERATURE = "temperature"


class ACVPU(StrEnum):
    """Level of consciousness, Chart 1 'Consciousness' row (ACVPU: C = new confusion)."""

    ALERT = "A"
    NEW_CONFUSION = "C"
    VOICE = "V"
    PAIN = "P"
    UNRESPONSIVE = "U"


@dataclass(frozen=True)
class Band:
    """One cell of Chart 1: ``lo <= charted value <= hi`` (None = open-ended) scores ``score``."""

    lo: Decimal | None
    hi: Decimal | None
    score: int

    def contains(self, value: Decimal) -> bool:
        """True when the (already charted) value falls inside this band, bounds inclusive."""
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)


def _bands(resolution: str, *cells: tuple[str | None, str | None, int]) -> tuple[Band, ...]:
    bands = tuple(
        Band(None if lo is None else Decimal(lo), None if hi is None else Decimal(hi), s)
        for lo, hi, s in cells
    )
    # Guard against transcription errors: the bands must tile the charted grid, i.e. each band
    # starts exactly one resolution step after the previous one ends, open at both extremes.
    step = Decimal(resolution)
    if bands[0].lo is not None or bands[-1].hi is not None:
        raise ValueError("chart bands must be open-ended at both extremes")
    for prev, nxt in zip(bands, bands[1:]):
        if prev.hi is None or nxt.lo is None or nxt.lo - prev.hi != step:
            raise ValueError(f"chart bands do not tile the {resolution} grid: {prev} / {nxt}")
    return bands


#: Resolution each parameter is charted at (Chart 1 writes temperatures to one decimal).
RESOLUTION: Mapping[str, Decimal] = {
    "respiration_rate": Decimal("1"),
    "spo2": Decimal("1"),
    "systolic_bp": Decimal("1"),
    "pulse": Decimal("1"),
    "temperature": Decimal("0.1"),
}

#: Chart 1 (RCP 2017), one band table per numeric row. Bounds are inclusive, charted values.
BAND_TABLES: Mapping[str, tuple[Band, ...]] = {
    # Respiration rate (per minute): <=8 3 | 9-11 1 | 12-20 0 | 21-24 2 | >=25 3
    "respiration_rate": _bands(
        "1", (None, "8", 3), ("9", "11", 1), ("12", "20", 0), ("21", "24", 2), ("25", None, 3)
    ),
    # SpO2 Scale 1 (%): <=91 3 | 92-93 2 | 94-95 1 | >=96 0
    "spo2_scale_1": _bands("1", (None, "91", 3), ("92", "93", 2), ("94", "95", 1), ("96", None, 0)),
    # SpO2 Scale 2 (%), <=92 part, identical on air and oxygen: <=83 3 | 84-85 2 | 86-87 1 | 88-92 0
    # (the >=93 part depends on air/oxygen and is the two tables below).
    "spo2_scale_2_on_air": _bands(
        "1", (None, "83", 3), ("84", "85", 2), ("86", "87", 1), ("88", "92", 0), ("93", None, 0)
    ),
    # Scale 2 on oxygen: 93-94 1 | 95-96 2 | >=97 3 (Chart 1: over-oxygenation is harmful in
    # hypercapnic respiratory failure, so high saturations on oxygen score).
    "spo2_scale_2_on_oxygen": _bands(
        "1",
        (None, "83", 3),
        ("84", "85", 2),
        ("86", "87", 1),
        ("88", "92", 0),
        ("93", "94", 1),
        ("95", "96", 2),
        ("97", None, 3),
    ),
    # Systolic BP (mmHg): <=90 3 | 91-100 2 | 101-110 1 | 111-219 0 | >=220 3
    "systolic_bp": _bands(
        "1",
        (None, "90", 3),
        ("91", "100", 2),
        ("101", "110", 1),
        ("111", "219", 0),
        ("220", None, 3),
    ),
    # Pulse (per minute): <=40 3 | 41-50 1 | 51-90 0 | 91-110 1 | 111-130 2 | >=131 3
    "pulse": _bands(
        "1",
        (None, "40", 3),
        ("41", "50", 1),
        ("51", "90", 0),
        ("91", "110", 1),
        ("111", "130", 2),
        ("131", None, 3),
    ),
    # Temperature (°C): <=35.0 3 | 35.1-36.0 1 | 36.1-38.0 0 | 38.1-39.0 1 | >=39.1 2
    "temperature": _bands(
        "0.1",
        (None, "35.0", 3),
        ("35.1", "36.0", 1),
        ("36.1", "38.0", 0),
        ("38.1", "39.0", 1),
        ("39.1", None, 2),
    ),
}

#: Chart 1 'Air or oxygen?' row: supplemental oxygen scores 2, air 0.
OXYGEN_SCORE = 2
#: Chart 1 'Consciousness' row: Alert 0; new Confusion, Voice, Pain or Unresponsive 3.
CONSCIOUSNESS_SCORES: Mapping[ACVPU, int] = {
    ACVPU.ALERT: 0,
    ACVPU.NEW_CONFUSION: 3,
    ACVPU.VOICE: 3,
    ACVPU.PAIN: 3,
    ACVPU.UNRESPONSIVE: 3,
}

#: Values outside these are rejected as entry/device errors rather than scored (not chart bands).
PLAUSIBLE_RANGE: Mapping[str, tuple[float, float]] = {
    "respiration_rate": (0.0, 100.0),
    "spo2": (0.0, 100.0),
    "systolic_bp": (0.0, 400.0),
    "pulse": (0.0, 350.0),
    "temperature": (20.0, 45.0),
}


class ClinicalRisk(StrEnum):
    """Chart 2 clinical-risk categories."""

    LOW = "low"
    LOW_MEDIUM = "low-medium"
    MEDIUM = "medium"
    HIGH = "high"


#: Chart 2 trigger wording and Chart 4 response (frequency of monitoring and clinical response).
RISK_RESPONSE: Mapping[ClinicalRisk, str] = {
    ClinicalRisk.LOW: (
        "Ward-based response. Score 0: minimum 12-hourly monitoring; continue routine NEWS "
        "monitoring. Score 1-4: minimum 4-6-hourly; inform registered nurse, who must assess the "
        "patient; registered nurse decides whether increased frequency of clinical monitoring or "
        "escalation of care is required."
    ),
    ClinicalRisk.LOW_MEDIUM: (
        "Urgent ward-based response (score of 3 in a single parameter): minimum 1-hourly "
        "monitoring; registered nurse to inform medical team caring for the patient, who will "
        "review and decide whether escalation of care is necessary."
    ),
    ClinicalRisk.MEDIUM: (
        "Key threshold for urgent response (score 5 or more): minimum 1-hourly monitoring; "
        "registered nurse to immediately inform the medical team caring for the patient; "
        "registered nurse to request urgent assessment by a clinician or team with core "
        "competencies in the care of acutely ill patients; provide clinical care in an "
        "environment with monitoring facilities."
    ),
    ClinicalRisk.HIGH: (
        "Urgent or emergency response (score 7 or more): continuous monitoring of vital signs; "
        "registered nurse to immediately inform the medical team caring for the patient - this "
        "should be at least at specialist registrar level; emergency assessment by a team with "
        "critical care competencies, including practitioner(s) with advanced airway management "
        "skills; consider transfer of care to a level 2 or 3 clinical care facility, i.e. "
        "higher-dependency unit or ICU; clinical care in an environment with monitoring "
        "facilities."
    ),
}


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """One set of vital signs; None means not recorded. ``spo2_scale`` 2 needs a clinician's
    decision that the patient has hypercapnic respiratory failure (Chart 1, SpO2 Scale 2)."""

    respiration_rate: float | None = None
    spo2: float | None = None
    on_oxygen: bool | None = None
    systolic_bp: float | None = None
    pulse: float | None = None
    consciousness: ACVPU | str | None = None
    temperature: float | None = None
    spo2_scale: int = 1

    @classmethod
    def from_vitals(cls, values: Mapping[str, Any], *, spo2_scale: int) -> Observation:
        """The NEWS2 inputs of one set of vital signs named as devices and the database name
        them (``respiratory_rate``, ``heart_rate``; missing keys are not recorded)."""
        return cls(
            respiration_rate=values.get("respiratory_rate"),
            spo2=values.get("spo2"),
            on_oxygen=values.get("on_oxygen"),
            systolic_bp=values.get("systolic_bp"),
            pulse=values.get("heart_rate"),
            consciousness=values.get("consciousness") or None,
            temperature=values.get("temperature"),
            spo2_scale=spo2_scale,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy of the inputs."""
        c = self.consciousness
        return {
            "respiration_rate": self.respiration_rate,
            "spo2": self.spo2,
            "on_oxygen": self.on_oxygen,
            "systolic_bp": self.systolic_bp,
            "pulse": self.pulse,
            "consciousness": c.value if isinstance(c, ACVPU) else c,
            "temperature": self.temperature,
            "spo2_scale": self.spo2_scale,
        }


@dataclass(frozen=True)
class ParameterScore:
    """Sub-score of one parameter; ``charted`` is the value after rounding to chart resolution."""

    parameter: Parameter
    score: int
    value: float | bool | str
    charted: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "parameter": self.parameter.value,
            "score": self.score,
            "value": self.value,
            "charted": self.charted,
            "note": self.note,
        }


@dataclass(frozen=True)
class News2Result:
    """NEWS2 for one observation set. When ``is_partial`` the total and risk are lower bounds
    (every missing sub-score is >= 0), and must be displayed as 'partial NEWS2'."""

    sub_scores: tuple[ParameterScore, ...]
    total: int
    any_single_three: bool
    risk: ClinicalRisk
    response: str
    missing: tuple[Parameter, ...]
    spo2_scale: int

    @property
    def is_partial(self) -> bool:
        """True when at least one parameter could not be scored."""
        return bool(self.missing)

    @property
    def label(self) -> str:
        """Display label: 'NEWS2 6' or 'partial NEWS2 >=4 (missing: pulse)'."""
        if not self.missing:
            return f"NEWS2 {self.total}"
        names = ", ".join(p.value for p in self.missing)
        return f"partial NEWS2 >={self.total} (missing: {names})"

    def score_of(self, parameter: Parameter) -> int | None:
        """Sub-score of ``parameter``, or None if it was missing."""
        for s in self.sub_scores:
            if s.parameter is parameter:
                return s.score
        return None

    def summary_dict(self) -> dict[str, Any]:
        """What is stored with each observation set: the sub-scores and what follows from them
        (the values are the set's own columns, and the response text follows from the risk)."""
        return {
            "sub_scores": {s.parameter.value: {"score": s.score} for s in self.sub_scores},
            "total": self.total,
            "any_single_three": self.any_single_three,
            "risk": self.risk.value,
            "missing": [p.value for p in self.missing],
            "is_partial": self.is_partial,
            "label": self.label,
            "spo2_scale": self.spo2_scale,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "sub_scores": {s.parameter.value: s.to_dict() for s in self.sub_scores},
            "total": self.total,
            "any_single_three": self.any_single_three,
            "risk": self.risk.value,
            "response": self.response,
            "missing": [p.value for p in self.missing],
            "is_partial": self.is_partial,
            "label": self.label,
            "spo2_scale": self.spo2_scale,
        }


def _chart(name: str, value: float) -> Decimal:
    """Validate a numeric observation and round it half-up to the chart's resolution."""
    # numbers.Real covers int, float and numpy scalars; Decimal covers Django DecimalFields.
    if isinstance(value, bool) or not isinstance(value, numbers.Real | Decimal):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    lo, hi = PLAUSIBLE_RANGE[name]
    if not lo <= float(value) <= hi:
        raise ValueError(f"{name}={value!r} is outside the plausible range [{lo}, {hi}]")
    # repr() gives the shortest decimal that round-trips, so 35.05 is Decimal('35.05') rather than
    # the binary 35.04999...; the chart rounds it up to 35.1.
    exact = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    return exact.quantize(RESOLUTION[name], rounding=ROUND_HALF_UP)


def _lookup(table: str, charted: Decimal) -> int:
    for band in BAND_TABLES[table]:
        if band.contains(charted):
            return band.score
    raise AssertionError(f"no band in {table} for {charted}")  # unreachable: bands tile the line


def risk_for(total: int, any_single_three: bool) -> ClinicalRisk:
    """Chart 2 clinical risk: >=7 high, 5-6 medium, otherwise low-medium if any single 3, else
    low (the aggregate bands take precedence over the red score)."""
    if total >= 7:
        return ClinicalRisk.HIGH
    if total >= 5:
        return ClinicalRisk.MEDIUM
    if any_single_three:
        return ClinicalRisk.LOW_MEDIUM
    return ClinicalRisk.LOW


def score_news2(obs: Observation) -> News2Result:
    """Score an observation set per RCP NEWS2 Chart 1; missing parameters are reported, not
    guessed. Raises ValueError/TypeError for implausible or malformed values."""
    if obs.spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale must be 1 or 2, got {obs.spo2_scale!r}")
    if obs.on_oxygen is not None and not isinstance(obs.on_oxygen, bool):
        raise TypeError("on_oxygen must be a bool or None")
    subs: list[ParameterScore] = []
    missing: list[Parameter] = []

    def numeric(param: Parameter, table: str, value: float | None) -> None:
        if value is None:
            missing.append(param)
            return
        charted = _chart(param.value, value)
        subs.append(ParameterScore(param, _lookup(table, charted), value, str(charted)))

    numeric(Parameter.RESPIRATION_RATE, "respiration_rate", obs.respiration_rate)

    # SpO2. Scale 2 at >=93% depends on whether the patient is on oxygen (Chart 1); below that
    # both Scale 2 columns agree, so air/oxygen status is only needed above 92%.
    if obs.spo2 is None:
        missing.append(Parameter.SPO2)
    else:
        charted = _chart("spo2", obs.spo2)
        if obs.spo2_scale == 1:
            subs.append(
                ParameterScore(
                    Parameter.SPO2,
                    _lookup("spo2_scale_1", charted),
                    obs.spo2,
                    str(charted),
                    "scale 1",
                )
            )
        elif obs.on_oxygen is None and charted >= 93:
            missing.append(Parameter.SPO2)  # indeterminate: scale 2 >=93% needs air/oxygen
        else:
            table = "spo2_scale_2_on_oxygen" if obs.on_oxygen else "spo2_scale_2_on_air"
            note = "scale 2, " + ("on oxygen" if obs.on_oxygen else "on air")
            subs.append(
                ParameterScore(
                    Parameter.SPO2, _lookup(table, charted), obs.spo2, str(charted), note
                )
            )

    if obs.on_oxygen is None:
        missing.append(Parameter.AIR_OR_OXYGEN)
    else:
        subs.append(
            ParameterScore(
                Parameter.AIR_OR_OXYGEN,
                OXYGEN_SCORE if obs.on_oxygen else 0,
                obs.on_oxygen,
                "oxygen" if obs.on_oxygen else "air",
            )
        )

    numeric(Parameter.SYSTOLIC_BP, "systolic_bp", obs.systolic_bp)
    numeric(Parameter.PULSE, "pulse", obs.pulse)

    if obs.consciousness is None:
        missing.append(Parameter.CONSCIOUSNESS)
    else:
        raw = obs.consciousness
        level = raw if isinstance(raw, ACVPU) else ACVPU(str(raw).strip().upper())
        subs.append(
            ParameterScore(
                Parameter.CONSCIOUSNESS, CONSCIOUSNESS_SCORES[level], level.value, level.value
            )
        )

    numeric(Parameter.TEMPERATURE, "temperature", obs.temperature)

    order = list(Parameter)
    subs.sort(key=lambda s: order.index(s.parameter))
    missing.sort(key=order.index)
    total = sum(s.score for s in subs)
    any_three = any(s.score == 3 for s in subs)
    risk = risk_for(total, any_three)
    return News2Result(
        sub_scores=tuple(subs),
        total=total,
        any_single_three=any_three,
        risk=risk,
        response=RISK_RESPONSE[risk],
        missing=tuple(missing),
        spo2_scale=obs.spo2_scale,
    )


# --------------------------------------------------------------------------------------------
# Alerting policy (pure)
# --------------------------------------------------------------------------------------------
#
# Threshold alerts follow Chart 2's triggers, ordered by severity so that escalation is a
# comparison: RED_SCORE (a 3 in any single parameter: urgent ward-based response) < URGENT
# (aggregate >= 5: key threshold for urgent response) < EMERGENCY (aggregate >= 7).
#
# Episode and cooldown semantics (one episode = one alert):
#   * An episode opens when a set crosses a threshold and stays open until a *complete* set scores
#     below every threshold. A partial set never closes an episode: a missing parameter is not
#     evidence of recovery. A partial set can open or escalate one, because a partial total is a
#     lower bound.
#   * Within an open episode an alert is raised only on escalation above the episode's highest
#     level so far (urgent -> emergency raises a new alert; 7 -> 5 -> 7 does not).
#   * Opening or escalating is still silent when an alert of the same or a higher level was
#     raised within ``cooldown`` before it: this absorbs scores flapping around a threshold
#     (5, 4, 5, ... or 7, 4, 5, 7 within the cooldown is one alert per level).
#   * TREND (sustained deterioration) is an early warning below the urgent threshold, with its
#     own cooldown, on complete sets only (a parameter that appears or disappears fakes a rise
#     or fall). It fires when the last ``trend_sets`` complete sets all lie within
#     ``trend_window``, their totals never fall from one set to the next, the latest exceeds the
#     first by at least ``trend_rise``, and neither the set nor the open episode has reached
#     URGENT (from there the threshold alerts already demand a response). Defaults: 3 sets
#     within 6 hours rising by >= 2 (a rise seen across the 4-6-hourly observations that Chart 4
#     asks for at low scores). These trend defaults are this module's choice, not the RCP's.


class AlertKind(IntEnum):
    """Alert kinds; threshold kinds are ordered by severity (TREND stands apart)."""

    NONE = 0
    RED_SCORE = 1
    URGENT = 2
    EMERGENCY = 3
    TREND = 10


_THRESHOLD_KINDS = (AlertKind.RED_SCORE, AlertKind.URGENT, AlertKind.EMERGENCY)


@dataclass(frozen=True)
class AlertPolicy:
    """Tunable constants of the policy; defaults are documented in the module comment above."""

    urgent_total: int = 5
    emergency_total: int = 7
    cooldown: timedelta = timedelta(hours=4)
    trend_sets: int = 3
    trend_window: timedelta = timedelta(hours=6)
    trend_rise: int = 2
    trend_cooldown: timedelta = timedelta(hours=6)

    def __post_init__(self) -> None:
        if not 0 < self.urgent_total < self.emergency_total:
            raise ValueError("need 0 < urgent_total < emergency_total")
        if self.trend_sets < 2 or self.trend_rise < 1:
            raise ValueError("trend_sets must be >= 2 and trend_rise >= 1")
        if min(self.cooldown, self.trend_window, self.trend_cooldown) < timedelta(0):
            raise ValueError("durations must be non-negative")

    def level_of(self, result: News2Result) -> AlertKind:
        """Highest threshold level a scored set reaches (Chart 2 triggers)."""
        if result.total >= self.emergency_total:
            return AlertKind.EMERGENCY
        if result.total >= self.urgent_total:
            return AlertKind.URGENT
        if result.any_single_three:
            return AlertKind.RED_SCORE
        return AlertKind.NONE


@dataclass(frozen=True)
class ScoredSet:
    """A NEWS2 result with the (timezone-aware) time its observations were taken."""

    taken_at: datetime
    result: News2Result

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"taken_at": self.taken_at.isoformat(), "result": self.result.to_dict()}


@dataclass(frozen=True)
class AlertState:
    """Open-alert state for one patient, persisted by the caller between evaluations."""

    open_level: AlertKind = AlertKind.NONE
    episode_started_at: datetime | None = None
    last_raised: Mapping[AlertKind, datetime] = field(default_factory=dict)
    last_evaluated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (kinds by name, times ISO 8601)."""
        return {
            "open_level": self.open_level.name,
            "episode_started_at": (
                self.episode_started_at.isoformat() if self.episode_started_at else None
            ),
            "last_raised": {k.name: t.isoformat() for k, t in sorted(self.last_raised.items())},
            "last_evaluated_at": (
                self.last_evaluated_at.isoformat() if self.last_evaluated_at else None
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        """Inverse of ``to_dict``."""

        def ts(v: str | None) -> datetime | None:
            return None if v is None else datetime.fromisoformat(v)

        return cls(
            open_level=AlertKind[data["open_level"]],
            episode_started_at=ts(data.get("episode_started_at")),
            last_raised={
                AlertKind[k]: datetime.fromisoformat(v)
                for k, v in data.get("last_raised", {}).items()
            },
            last_evaluated_at=ts(data.get("last_evaluated_at")),
        )


@dataclass(frozen=True)
class Alert:
    """An alert to raise: its kind, when, the NEWS2 total that triggered it, and why."""

    kind: AlertKind
    raised_at: datetime
    total: int
    is_partial: bool
    reason: str
    response: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind.name,
            "raised_at": self.raised_at.isoformat(),
            "total": self.total,
            "is_partial": self.is_partial,
            "reason": self.reason,
            "response": self.response,
        }


@dataclass(frozen=True)
class AlertDecision:
    """Alerts to raise for the latest set, and the state to persist for the next call."""

    alerts: tuple[Alert, ...]
    state: AlertState
    suppressed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "alerts": [a.to_dict() for a in self.alerts],
            "state": self.state.to_dict(),
            "suppressed": list(self.suppressed),
        }


def _check_time(t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("observation times must be timezone-aware")


def _trend(series: Sequence[ScoredSet], policy: AlertPolicy) -> tuple[int, int] | None:
    """(first, latest) totals when the sustained-rise rule holds on the latest set, else None."""
    if series[-1].result.is_partial:
        return None
    return trend_rise(
        [(s.taken_at, s.result.total) for s in series if not s.result.is_partial], policy
    )


def trend_rise(
    complete: Sequence[tuple[datetime, int]], policy: AlertPolicy
) -> tuple[int, int] | None:
    """The sustained-rise rule on the (time, total) of complete sets, the latest last:
    (first, latest) totals when it holds, else None."""
    complete = complete[-policy.trend_sets :]
    if len(complete) < policy.trend_sets:
        return None
    if complete[-1][0] - complete[0][0] > policy.trend_window:
        return None
    totals = [total for _, total in complete]
    if any(b < a for a, b in zip(totals, totals[1:])):
        return None
    if totals[-1] - totals[0] < policy.trend_rise:
        return None
    return totals[0], totals[-1]


def evaluate_alerts(
    series: Sequence[ScoredSet],
    state: AlertState | None = None,
    policy: AlertPolicy | None = None,
) -> AlertDecision:
    """Decide the alerts raised by the latest set of a chronological series (earlier sets are
    history for the trend rule) given the persisted state; pure and deterministic."""
    policy = policy or AlertPolicy()
    state = state or AlertState()
    if not series:
        return AlertDecision((), state)
    for s in series:
        _check_time(s.taken_at)
    for a, b in zip(series, series[1:]):
        if b.taken_at < a.taken_at:
            raise ValueError("series must be in chronological order")
    latest = series[-1]
    now, result = latest.taken_at, latest.result
    if state.last_evaluated_at is not None and now < state.last_evaluated_at:
        raise ValueError("latest set is older than the last evaluated one")

    alerts: list[Alert] = []
    suppressed: list[str] = []
    last_raised = dict(state.last_raised)
    open_level, started = state.open_level, state.episode_started_at

    level = policy.level_of(result)
    if level is AlertKind.NONE:
        if not result.is_partial:  # only a complete set below every threshold ends an episode
            open_level, started = AlertKind.NONE, None
    elif level > open_level:
        new_episode = open_level is AlertKind.NONE
        recent = [
            k
            for k in _THRESHOLD_KINDS
            if k >= level and k in last_raised and now - last_raised[k] < policy.cooldown
        ]
        if recent:
            suppressed.append(
                f"{level.name}: {max(recent).name} raised within the {policy.cooldown} cooldown"
            )
        else:
            why = {
                AlertKind.RED_SCORE: "score of 3 in a single parameter ("
                + ", ".join(s.parameter.value for s in result.sub_scores if s.score == 3)
                + ")",
                AlertKind.URGENT: f"NEWS2 total {result.total} >= {policy.urgent_total}",
                AlertKind.EMERGENCY: f"NEWS2 total {result.total} >= {policy.emergency_total}",
            }[level]
            if not new_episode:
                why = f"escalation from {open_level.name}: {why}"
            if result.is_partial:
                why += f" ({result.label})"
            alerts.append(Alert(level, now, result.total, result.is_partial, why, result.response))
            last_raised[level] = now
        open_level = level
        started = started or now
    # level <= open_level inside an open episode: same episode, nothing new to say.

    # The trend rule is an early warning below the urgent threshold; at or above it (in this set
    # or the open episode) the threshold alerts already demand a response.
    rise = _trend(series, policy) if open_level < AlertKind.URGENT else None
    if rise is not None:
        prev = last_raised.get(AlertKind.TREND)
        if prev is not None and now - prev < policy.trend_cooldown:
            suppressed.append(f"TREND: raised within the {policy.trend_cooldown} cooldown")
        else:
            alerts.append(
                Alert(
                    AlertKind.TREND,
                    now,
                    result.total,
                    False,
                    f"NEWS2 rising {rise[0]} -> {rise[1]} over the last "
                    f"{policy.trend_sets} complete sets within {policy.trend_window}",
                    result.response,
                )
            )
            last_raised[AlertKind.TREND] = now

    new_state = replace(
        state,
        open_level=open_level,
        episode_started_at=started,
        last_raised=last_raised,
        last_evaluated_at=now,
    )
    return AlertDecision(tuple(alerts), new_state, tuple(suppressed))


def replay_alerts(
    series: Sequence[ScoredSet],
    state: AlertState | None = None,
    policy: AlertPolicy | None = None,
) -> tuple[list[Alert], AlertState]:
    """Evaluate every prefix of a chronological series in turn (as if sets arrived one by one);
    returns all alerts raised and the final state."""
    state = state or AlertState()
    alerts: list[Alert] = []
    for i in range(1, len(series) + 1):
        decision = evaluate_alerts(series[:i], state, policy)
        alerts.extend(decision.alerts)
        state = decision.state
    return alerts, state
