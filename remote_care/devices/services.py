"""Every write of devices: registration, tokens and their revocation, and the ingest of
observation sets (scored with NEWS2, alerts raised server-side)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from remote_care.models import OBSERVATION_VITALS, Alert, Device, Monitoring, Observation
from remote_care.monitoring.services import StoredSet, alerts_notify, alerts_raise
from remote_care.physiology.news2_batch import News2Batch, score_news2_batch

if TYPE_CHECKING:
    from django.contrib.auth.models import User

TOKEN_PREFIX = "mdv"  # noqa: S105 (a public marker in every device token, not a secret)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedDevice:
    device: Device
    token: str  # shown once; only its hash is stored


def device_register(
    *, patient: Any, label: str, registered_by: User, request: Any = None
) -> IssuedDevice:
    """Register a device to a patient and issue its token (returned once, never stored)."""
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        device = Device.objects.create(
            patient=patient,
            label=label.strip()[:100],
            token_prefix=prefix,
            token_hash=_hash(token),
            registered_by=registered_by,
        )
        Monitoring.objects.get_or_create(patient=patient)
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=registered_by,
            request=request,
            obj=device,
            patient=patient,
            detail={"device_registered": device.label},
        )
    return IssuedDevice(device=device, token=token)


def device_revoke(*, device: Device, user: User, request: Any = None) -> Device:
    """Revoke a device's token at once; idempotent."""
    with transaction.atomic():
        if device.revoked_at is None:
            device.revoked_at = timezone.now()
            device.save(update_fields=["revoked_at"])
            audit_record(
                action=AuditEvent.Action.RECORD_CHANGED,
                actor=user,
                request=request,
                obj=device,
                patient=device.patient,
                detail={"device_revoked": True},
            )
    return device


def device_authenticate(token: str) -> Device | None:
    """The active device a token belongs to, or None (unknown, malformed or revoked)."""
    parts = token.split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    device = Device.objects.select_related("patient").filter(token_prefix=parts[1]).first()
    if device is None or not hmac.compare_digest(device.token_hash, _hash(token)):
        return None
    return device if device.is_active else None


@dataclass
class IngestResult:
    stored: list[StoredSet] = field(default_factory=list)  # in time order
    duplicates: list[int] = field(default_factory=list)  # indices into the items, ascending
    alerts: list[Alert] = field(default_factory=list)


def observations_ingest(*, device: Device, items: list[dict[str, Any]]) -> IngestResult:
    """Store already-validated observation sets of one device, skipping any it sent before
    (same device and timestamp), score them with NEWS2 and raise alerts server-side, with one
    audit event for the batch; all or nothing. Concurrent batches for one patient are
    serialised on the patient's monitoring row."""
    result = IngestResult()
    fresh, repeated = _batch_dedupe(items)
    fresh.sort(key=lambda pair: pair[1]["taken_at"])
    ordered = [item for _, item in fresh]
    with transaction.atomic():
        monitoring, _ = Monitoring.objects.select_for_update().get_or_create(patient=device.patient)
        scores = score_news2_batch(
            _columns(ordered), spo2_scale=monitoring.spo2_scale, size=len(ordered)
        )
        inserted = _observations_insert(device=device, items=ordered, scores=scores)
        stored_at = {position: pk for pk, position in inserted}
        totals, partial = scores.totals.tolist(), scores.partial.tolist()
        threes = scores.any_single_three.tolist()
        for position, (index, item) in enumerate(fresh):
            pk = stored_at.get(position)
            if pk is None:
                repeated.append(index)
                continue
            result.stored.append(
                StoredSet(
                    pk=pk,
                    taken_at=item["taken_at"],
                    values=item,
                    news2_total=totals[position],
                    news2_partial=partial[position],
                    any_single_three=threes[position],
                )
            )
        result.duplicates = sorted(repeated)
        result.alerts = observations_after_insert(monitoring=monitoring, stored=result.stored)
        Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now())
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            username=f"device:{device.token_prefix}",
            obj=device,
            patient=device.patient,
            detail={
                "observations_stored": len(result.stored),
                "duplicates": len(result.duplicates),
                "alerts": len(result.alerts),
            },
        )
    if result.alerts:
        alerts = result.alerts
        transaction.on_commit(lambda: alerts_notify(alerts=alerts))
    return result


def observations_after_insert(*, monitoring: Monitoring, stored: list[StoredSet]) -> list[Alert]:
    """Everything that follows from newly inserted sets (in time order), inside the ingest's
    transaction with the monitoring row locked: today the alerts; returns them."""
    return alerts_raise(monitoring=monitoring, new=stored)


def _batch_dedupe(
    items: list[dict[str, Any]],
) -> tuple[list[tuple[int, dict[str, Any]]], list[int]]:
    """(index, item) of each first timestamp in the batch, and the indices of its repeats."""
    fresh: list[tuple[int, dict[str, Any]]] = []
    repeated: list[int] = []
    times: set[datetime] = set()
    for index, item in enumerate(items):
        taken_at = item["taken_at"]
        if taken_at in times:
            repeated.append(index)
        else:
            times.add(taken_at)
            fresh.append((index, item))
    return fresh, repeated


_NEWS2_INPUTS: tuple[str, ...] = ("respiratory_rate", "spo2", "on_oxygen", "systolic_bp")
_NEWS2_INPUTS += ("heart_rate", "consciousness", "temperature")


def _columns(items: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [item.get(name) for item in items] for name in _NEWS2_INPUTS}


_NUMBERS = tuple(name for name in OBSERVATION_VITALS if name not in ("consciousness", "on_oxygen"))
# What the staging table holds of each set: its position in the batch, the columns that vary
# from set to set, and its NEWS2 sub-score code (the summary is joined in by code, so
# PostgreSQL parses each distinct summary once rather than once a row). Patient, device and
# time received are the same for the whole batch: parameters of the insert, not staged.
_STAGED: tuple[str, ...] = ("taken_at", *_NUMBERS, "consciousness", "on_oxygen")
_STAGED += ("news2_total", "news2_partial")
_BATCH: tuple[str, ...] = ("patient_id", "device_id", "received_at")
_BOOL = {None: "\\N", True: "t", False: "f"}


def _observations_insert(
    *, device: Device, items: list[dict[str, Any]], scores: News2Batch
) -> list[tuple[int, int]]:
    """Insert the sets (time order) that this device has not stored before; returns the
    (id, position in items) of those inserted. Look up which are stored, then on PostgreSQL
    COPY the others into a staging table and INSERT ... SELECT them, elsewhere (SQLite)
    bulk_create them. Every ingest of a device's sets holds its patient's monitoring row, so
    the look-up stays true until the insert; should a writer outside that lock (a script)
    store one of the sets meanwhile, PostgreSQL's insert fails on the unique key and the
    batch is inserted again with ON CONFLICT DO NOTHING."""
    if not items:
        return []
    seen = _stored_times(device=device, items=items)
    positions = [p for p, item in enumerate(items) if item["taken_at"] not in seen]
    if not positions:
        return []
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic():  # a savepoint: the fallback runs in a clean state
                return _staged_insert(
                    device=device, items=items, scores=scores, positions=positions
                )
        except IntegrityError:
            # The unique key was taken meanwhile; any other violation fails here again.
            return _staged_insert(
                device=device,
                items=items,
                scores=scores,
                positions=range(len(items)),
                on_conflict=True,
            )
    now = timezone.now()
    summaries = scores.summaries()
    totals, partial = scores.totals.tolist(), scores.partial.tolist()
    observations = [
        Observation(
            patient_id=device.patient_id,
            device=device,
            taken_at=items[p]["taken_at"],
            received_at=now,
            **{name: items[p].get(name) for name in _NUMBERS},
            consciousness=items[p].get("consciousness") or "",
            on_oxygen=items[p].get("on_oxygen"),
            news2_total=totals[p],
            news2_partial=partial[p],
            news2=summaries[p],
        )
        for p in positions
    ]
    Observation.objects.bulk_create(observations, batch_size=2000)
    return [(o.pk, p) for o, p in zip(observations, positions, strict=True)]


def _stored_times(*, device: Device, items: list[dict[str, Any]]) -> set[datetime]:
    """The timestamps among the items' (time order) that the device has stored before: one
    index range read over the batch's span (sets stored between them come back too and
    simply match nothing)."""
    return set(
        Observation.objects.filter(
            device=device,
            taken_at__gte=items[0]["taken_at"],
            taken_at__lte=items[-1]["taken_at"],
        ).values_list("taken_at", flat=True)
    )


def _copy_number(value: Any) -> str:
    return "\\N" if value is None else str(value)


def _staged_lines(
    *, items: list[dict[str, Any]], scores: News2Batch, positions: Iterable[int]
) -> str:
    """The sets at ``positions`` in COPY's text format: position, the staged columns, the
    sub-score code."""
    totals, partial = scores.totals.tolist(), scores.partial.tolist()
    codes = scores.codes.tolist()
    lines = []
    for position in positions:
        item = items[position]
        get = item.get
        numbers = "\t".join([_copy_number(get(name)) for name in _NUMBERS])
        # Consciousness is one ACVPU letter or empty, never anything to escape.
        lines.append(
            f"{position}\t{item['taken_at'].isoformat()}\t{numbers}\t"
            f"{get('consciousness') or ''}\t{_BOOL[get('on_oxygen')]}\t{totals[position]}\t"
            f"{'t' if partial[position] else 'f'}\t{codes[position]}\n"
        )
    return "".join(lines)


def _staged_insert(
    *,
    device: Device,
    items: list[dict[str, Any]],
    scores: News2Batch,
    positions: Iterable[int],
    on_conflict: bool = False,
) -> list[tuple[int, int]]:
    """COPY the sets at ``positions`` into a staging table and their distinct NEWS2 summaries
    into another, insert them (``on_conflict``: skipping any stored meanwhile); returns
    (id, position) of each inserted row."""
    columns = ", ".join(_STAGED)
    table = Observation._meta.db_table
    summaries = scores.summaries()
    distinct = {code: summaries[p] for p, code in enumerate(scores.codes.tolist())}
    with connection.cursor() as cursor:
        # The staging tables are never analysed, so the planner guesses ~100,000 rows and
        # JIT-compiles the insert: ~45 ms of LLVM code generation per batch of 5,000, more
        # than the insert's own work. The ingest runs in a transaction; LOCAL ends with it.
        cursor.execute("SET LOCAL jit = off")
        # Temporary tables live as long as the connection. They are emptied here rather than
        # on commit, because a batch may run inside an outer transaction (tests, the seed).
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS observation_batch_stage AS "  # noqa: S608 (names)
            f"SELECT 0 AS position, {columns}, 0::bigint AS code FROM {table} WITH NO DATA"
        )
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS observation_stage_news2 (code bigint, summary jsonb)"
        )
        with cursor.cursor.copy("COPY observation_stage_news2 (code, summary) FROM STDIN") as copy:
            for code, summary in distinct.items():
                copy.write_row((code, json.dumps(summary)))
        with cursor.cursor.copy(
            f"COPY observation_batch_stage (position, {columns}, code) FROM STDIN"
        ) as copy:
            copy.write(_staged_lines(items=items, scores=scores, positions=positions))
        # Positions, not the timestamps, come back: parsing 5,000 timestamps costs more than
        # the insert. (device_id, taken_at) is unique in the stage too, so the join is 1:1.
        # Without ON CONFLICT (the look-up found these sets new) each row is a plain insert,
        # not a speculative one: less work and WAL per row.
        staged = ", ".join(f"stage.{name}" for name in _STAGED)
        conflict = "ON CONFLICT (device_id, taken_at) DO NOTHING " if on_conflict else ""
        cursor.execute(
            f"WITH inserted AS (INSERT INTO {table} "  # noqa: S608 (names only)
            f"({', '.join(_BATCH)}, {columns}, news2) "
            f"SELECT %s, %s, %s, {staged}, news2.summary FROM observation_batch_stage stage "
            "JOIN observation_stage_news2 news2 ON news2.code = stage.code ORDER BY stage.taken_at "
            f"{conflict}RETURNING id, taken_at) "
            "SELECT inserted.id, stage.position FROM inserted "
            "JOIN observation_batch_stage stage ON stage.taken_at = inserted.taken_at",
            [device.patient_id, device.pk, timezone.now()],
        )
        inserted = cursor.fetchall()
        # DELETE, not TRUNCATE: a few thousand rows of a temporary table are cheaper to
        # delete than a new file for it.
        cursor.execute("DELETE FROM observation_batch_stage")
        cursor.execute("DELETE FROM observation_stage_news2")
    return inserted


# Devices whose clock was never set report 1970 (Unix epoch) or their clock chip's default
# (1980, 2000); no reading from before this is a real one, and dates centuries back also
# fall outside what time zones and RFC 3339 can express.
OBSERVATIONS_FROM = datetime(2001, 1, 1, tzinfo=UTC)


def observation_future_limit() -> datetime:
    """Device clocks drift; observations more than 5 minutes in the future are refused."""
    return timezone.now() + timedelta(minutes=5)
