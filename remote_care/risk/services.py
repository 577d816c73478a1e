"""The deterioration-risk model in service: loading the active version, scoring monitored
patients as their vital signs arrive, and queueing training runs.

Scoring is derived data kept idempotent by the (observation, model version) unique key: the
beat-driven sweep scores every monitored patient whose latest observation set has no score
from the active version yet, so a lost message, a dead worker or a new activation is caught
up on the next sweep and nothing is ever stored twice. With what is left of a sweep's budget
it back-fills older sets of the last ``BACKFILL`` (newest first), each scored on the readings
up to that set only, so a newly activated version's history chart is complete within a few
sweeps and shows what the model would have said at the time.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Case, Exists, FloatField, OuterRef, Subquery, Value, When
from django.utils import timezone

from medai_site.registry.loader import LoadedModel, NoActiveModel, load_active_model
from medai_site.registry.models import ModelVersion
from medai_site.registry.shadow import ShadowAnswer, ShadowItem, shadow_run
from remote_care.ml.physionet import ACVPU_TO_GCS, VITALS_TO_PHYSIONET, stay_from_table
from remote_care.models import Monitoring, Observation, RiskScore
from remote_care.monitoring.timeseries import EpochSeconds
from remote_care.risk.shadow import ITEM_TYPE as SHADOW_ITEM_TYPE
from remote_care.risk.shadow import risk_band

RISK_TASK = "remote_care.deterioration"
RISK_TRAINING_KIND = "remote_care.risk_training"


# The model reads at most this much history (its training window: the first 48 h of a stay).
WINDOW = timedelta(hours=48)


# Windows scored per pass of the model.
SCORE_BATCH = 256


# How far back a sweep back-fills scores of older sets (the patient page's risk history).
BACKFILL = timedelta(days=7)


def risk_model_from_bytes(content: bytes) -> Any:
    """A RiskModel from the registry's artifact bytes."""
    from remote_care.ml.model import artifact_load_bytes

    return artifact_load_bytes(content)


def risk_model_to_bytes(model: Any) -> bytes:
    """Artifact bytes of a RiskModel, as the registry stores them."""
    from remote_care.ml.model import artifact_bytes

    return artifact_bytes(model)


def version_cut_offs(version: ModelVersion | None) -> dict[str, float] | None:
    """A deterioration version's operating points as probabilities, {"elevated", "high"}: the
    risks above which the top 20 % / 10 % of its validation stays lie (recorded by training
    as ``alert_thresholds``); None for a version registered without them."""
    cuts = (version.metrics or {}).get("alert_thresholds") if version is not None else None
    if not cuts or cuts.get("high") is None or cuts.get("elevated") is None:
        return None
    return {"elevated": float(cuts["elevated"]), "high": float(cuts["high"])}


def version_input_contract(version: ModelVersion | None) -> dict[str, Any]:
    """A deterioration version's input contract for its facts card: training ranges per vital
    sign (labelled), the minimum-data rule, where they come from and how often they refused the
    training stays; the stated fallback for versions trained before contracts were recorded."""
    from remote_care.ml.applicability import FALLBACK_CONTRACT, LABELS

    recorded = (version.metrics or {}).get("input_contract") if version is not None else None
    contract = recorded if recorded and recorded.get("ranges") else FALLBACK_CONTRACT
    return {
        "recorded": contract is not FALLBACK_CONTRACT,
        "source": contract.get("source", ""),
        "min_hours": contract["min_hours"],
        "min_channels": contract["min_channels"],
        "flagged_share_of_stays": contract.get("flagged_share_of_stays"),
        "ranges": [
            {"label": LABELS[ch][0], "low": lo, "high": hi, "unit": LABELS[ch][1]}
            for ch, (lo, hi) in contract["ranges"].items()
            if ch in LABELS
        ],
    }


def active_risk_model() -> LoadedModel | None:
    """The risk model in service, loaded once per process; None when none is active."""
    try:
        return load_active_model(RISK_TASK, risk_model_from_bytes)
    except NoActiveModel:
        return None


# A window table row: patient, epoch seconds, then the columns of VITALS_TABLE_COLUMNS (the
# measured vital signs in VITALS_TO_PHYSIONET's order, GCS from ACVPU, oxygen as 1).
_MEASURED = tuple(VITALS_TO_PHYSIONET)


def _window_table(sets: list[tuple[int, int]]) -> tuple[dict[int, Any], dict[int, int], Any]:
    """For (patient, observation set) pairs: each set's time (datetime and epoch microseconds)
    and every reading of the sets' patients from 48 h before the earliest set to the latest
    one, as one float table ``[patient, epoch s, 8 vitals]`` sorted by patient and time (two
    queries; the rows go to numpy straight from the cursor, no model or datetime per row)."""
    taken: dict[int, Any] = {}
    taken_us: dict[int, int] = {}
    for pk, at, epoch in Observation.objects.filter(pk__in=[obs for _, obs in sets]).values_list(
        "pk", "taken_at", EpochSeconds("taken_at")
    ):
        taken[pk], taken_us[pk] = at, round(epoch * 1e6)
    gcs = Case(
        *(When(consciousness=letter, then=Value(score)) for letter, score in ACVPU_TO_GCS.items()),
        default=None,
        output_field=FloatField(),
    )
    oxygen = Case(When(on_oxygen=True, then=Value(1.0)), default=None, output_field=FloatField())
    rows = (
        Observation.objects.filter(
            patient_id__in={patient for patient, _ in sets},
            taken_at__gt=min(taken.values()) - WINDOW,
            taken_at__lte=max(taken.values()),
        )
        .order_by("patient_id", "taken_at")
        .values_list("patient_id", EpochSeconds("taken_at"), *_MEASURED, gcs, oxygen)
    )
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        table = np.array(cursor.fetchall(), dtype=np.float64).reshape(-1, 4 + len(_MEASURED))
    return taken, taken_us, table


def _stays_for(sets: list[tuple[int, int]], patients: dict[int, Any]) -> tuple[dict, list, list]:
    """(set times, Stay per set, hours since each window's first reading) for (patient, set)
    pairs: each set's window is the patient's readings of the 48 h up to and including it."""
    taken, taken_us, table = _window_table(sets)
    # Whole microseconds: window edges compare exactly (a reading exactly 48 h old is out).
    micros = np.rint(table[:, 1] * 1e6).astype(np.int64)
    pids, first = np.unique(table[:, 0].astype(np.int64), return_index=True)
    bounds = dict(zip(pids.tolist(), zip(first.tolist(), [*first[1:].tolist(), len(table)])))
    window_us = int(WINDOW.total_seconds() * 1e6)
    stays, spans = [], []
    for pid, obs in sets:
        a, b = bounds.get(pid, (0, 0))
        end = taken_us[obs]
        lo = a + int(np.searchsorted(micros[a:b], end - window_us, side="right"))
        hi = a + int(np.searchsorted(micros[a:b], end, side="right"))
        patient = patients[pid]
        stays.append(
            stay_from_table(
                (micros[lo:hi] - micros[lo]) / 60e6 if hi > lo else micros[lo:hi],
                table[lo:hi, 2:],
                age=patient.age_on(taken[obs].date()),
                sex=patient.sex,
            )
        )
        spans.append((micros[hi - 1] - micros[lo]) / 60e6 if hi > lo else 0.0)
    return taken, stays, spans


def score_stays(
    model: Any, stays: list[Any], minutes: list[float]
) -> list[tuple[float | None, int, dict[str, Any]]]:
    """(risk at the hour of the latest reading, hours with data, inputs) for each window
    (a Stay, and the minutes from its first reading to its latest), in one batched pass of
    the model. ``inputs`` says what the window had (hours covered, channels present); a window
    with too little data or a value outside the training ranges gets risk None and
    ``inputs["reason"]`` (ml/applicability.py)."""
    from remote_care.ml.applicability import check_inputs_batch
    from remote_care.ml.features import build_batch

    hours = [min(int(m // 60), model.spec.n_hours - 1) for m in minutes]
    contract = getattr(model, "input_contract", None)
    inputs = check_inputs_batch(stays, contract)
    x, static = build_batch(stays, model.spec, model.normaliser)
    risk = model.calibrate(model.logits(x, static))
    # Channel-major features: every channel's second feature is its "observed this hour" mask.
    observed = x.reshape(x.shape[0], x.shape[1], len(model.spec.channels), -1)[..., 1] > 0
    observed = observed.any(-1)
    return [
        (
            float(risk[i, h]) if inputs[i]["sufficient"] else None,
            int(np.count_nonzero(observed[i, : h + 1])),
            inputs[i],
        )
        for i, h in enumerate(hours)
    ]


def patients_needing_scores(version: ModelVersion) -> Any:
    """Monitored patients whose latest observation set has no score from ``version``."""
    latest = Observation.objects.filter(patient=OuterRef("patient_id")).order_by("-taken_at")
    return (
        Monitoring.objects.annotate(latest_obs=Subquery(latest.values("pk")[:1]))
        .exclude(latest_obs__isnull=True)
        .exclude(
            Exists(
                RiskScore.objects.filter(observation=OuterRef("latest_obs"), model_version=version)
            )
        )
        .values_list("patient_id", "latest_obs")
    )


def sets_needing_scores(version: ModelVersion, *, since: Any) -> Any:
    """Monitored patients' observation sets taken since ``since`` without a score from
    ``version``, newest first, as (patient, set) pairs."""
    return (
        Observation.objects.filter(taken_at__gte=since, patient__monitoring__isnull=False)
        .exclude(
            Exists(RiskScore.objects.filter(observation=OuterRef("pk"), model_version=version))
        )
        .order_by("-taken_at")
        .values_list("patient_id", "pk")
    )


def _score_sets(version: ModelVersion, model: Any, sets: list[tuple[int, int]]) -> int:
    """Score each (patient, set) on the readings up to that set, SCORE_BATCH sets per window
    query and model pass; store; return how many."""
    from medai_site.patients.models import Patient

    if not sets:
        return 0
    patients = Patient.objects.only("birth_date", "sex").in_bulk({pid for pid, _ in sets})
    scores: list[tuple[int, int, Any, float | None, int, dict, str]] = []
    # The windows just scored, for a shadow version to score the same after they are stored.
    shadow_items: list[ShadowItem] = []
    cuts = version_cut_offs(version)
    for chunk_start in range(0, len(sets), SCORE_BATCH):
        chunk = sets[chunk_start : chunk_start + SCORE_BATCH]
        taken, stays, minutes = _stays_for(chunk, patients)
        scored = score_stays(model, stays, minutes)
        for (pid, obs), (risk, hours, inputs), stay, minute in zip(
            chunk, scored, stays, minutes, strict=True
        ):
            if risk is not None and not math.isfinite(risk):
                continue
            shadow_items.append(
                ShadowItem(
                    item_type=SHADOW_ITEM_TYPE,
                    item_id=str(obs),
                    active_label=risk_band(risk, cuts),
                    active_score=risk,
                    active_output={"risk": risk},
                    payload=(stay, minute),
                )
            )
            # An "insufficient data" row is stored too: it is the answer for that set (the
            # board shows its reason) and keeps the sweep from trying the set again.
            scores.append(
                (
                    pid,
                    obs,
                    taken[obs],
                    risk,
                    hours,
                    {k: v for k, v in inputs.items() if k not in ("reason", "sufficient")},
                    inputs["reason"][:500],
                )
            )
    # A concurrent sweep may have stored some of these already: the unique key keeps one.
    _risk_scores_insert(version, scores)
    # After the scores clinicians see are stored; a shadow failure is only counted.
    shadow_run(
        task=RISK_TASK,
        active_version=version,
        items=shadow_items,
        load=risk_model_from_bytes,
        score=_shadow_answers,
    )
    return len(scores)


# The RiskScore columns the sweep writes, in the order of _risk_scores_insert's rows.
_INSERT_FIELDS = (
    "patient",
    "observation",
    "model_version",
    "taken_at",
    "risk",
    "hours_observed",
    "inputs",
    "insufficient_reason",
    "computed_at",
)


def _risk_scores_insert(
    version: ModelVersion, rows: list[tuple[int, int, Any, float | None, int, dict, str]]
) -> None:
    """Store (patient, set, taken at, risk, hours observed, inputs, reason) rows as RiskScores
    of ``version``, skipping any the unique key already holds (what ``bulk_create(...,
    ignore_conflicts=True)`` does, in one executemany: the ORM's per-field preparation of a
    sweep's rows cost as much as a third of its window read)."""
    from django.db.models.constants import OnConflict

    if not rows:
        return
    ops = connection.ops
    fields = [RiskScore._meta.get_field(name) for name in _INSERT_FIELDS]
    inputs_field = RiskScore._meta.get_field("inputs")
    sql = "{} {} ({}) VALUES ({}) {}".format(
        ops.insert_statement(on_conflict=OnConflict.IGNORE),
        ops.quote_name(RiskScore._meta.db_table),
        ", ".join(ops.quote_name(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
        ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None),
    )
    now = ops.adapt_datetimefield_value(timezone.now())
    # One transaction: on SQLite's autocommit each row would otherwise commit on its own.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            sql,
            [
                (
                    pid,
                    obs,
                    version.pk,
                    ops.adapt_datetimefield_value(taken_at),
                    risk,
                    hours,
                    ops.adapt_json_value(inputs, inputs_field.encoder),
                    reason,
                    now,
                )
                for pid, obs, taken_at, risk, hours, inputs, reason in rows
            ],
        )


def _shadow_answers(
    version: ModelVersion, model: Any, items: list[ShadowItem]
) -> list[ShadowAnswer]:
    """A shadow version's answers for windows the version in service has just scored."""
    cuts = version_cut_offs(version)
    scored = score_stays(model, [i.payload[0] for i in items], [i.payload[1] for i in items])
    answers = []
    for risk, hours, inputs in scored:
        risk = risk if risk is None or math.isfinite(risk) else None
        answers.append(
            ShadowAnswer(
                label=risk_band(risk, cuts),
                score=risk,
                output={"risk": risk, "hours_observed": hours, "reason": inputs.get("reason", "")},
            )
        )
    return answers


def risk_scores_refresh(
    *,
    limit: int = 2000,
    patient_ids: list[int] | None = None,
    backfill: timedelta | None = BACKFILL,
) -> int:
    """Score the latest observation set of every monitored patient that lacks a score from the
    active version, then, with what is left of ``limit``, back-fill older unscored sets of the
    last ``backfill`` (newest first); idempotent. Returns the number stored."""
    loaded = active_risk_model()
    if loaded is None:
        return 0
    version, model = loaded.version, loaded.model
    pending = patients_needing_scores(version)
    if patient_ids is not None:
        pending = pending.filter(patient_id__in=patient_ids)
    stored = _score_sets(version, model, list(pending[:limit]))
    if backfill is not None and stored < limit:
        older = sets_needing_scores(version, since=timezone.now() - backfill)
        if patient_ids is not None:
            older = older.filter(patient_id__in=patient_ids)
        stored += _score_sets(version, model, list(older[: limit - stored]))
    return stored


def risk_training_start(
    *, spec: str, members: int, max_epochs: int, activate: bool, user: Any
) -> Any:
    """Queue a training run of the deterioration model (ml queue); returns the Job."""
    from medai_site.jobs.services import job_create

    return job_create(
        kind=RISK_TRAINING_KIND,
        owner=user,
        title=f"Train the deterioration model ({spec} inputs, {members} member"
        f"{'s' if members != 1 else ''})",
        params={
            "spec": spec,
            "members": members,
            "max_epochs": max_epochs,
            "activate": activate,
        },
    )
