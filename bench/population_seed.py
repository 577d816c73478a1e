"""A synthetic monitored population written straight into PostgreSQL with generate_series
(no Python loop over rows): patients with care teams and monitoring, one device each, evenly
spaced observation sets with a skewed NEWS2 distribution, and alerts raised from the high
ones, most of them acknowledged. Used by bench/analytics.py and by the 1M-row test.

Deterministic for a given size (setseed), so two runs aggregate the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

# A realistic news2 document: what remote_care.devices.services stores (score_news2(...).to_dict()
# plus its label), about 1.1 kB, so heap rows are as wide as in production.
_WIDE_NEWS2 = """jsonb_build_object(
  'sub_scores', jsonb_build_object(
    'respiration_rate', jsonb_build_object('parameter', 'respiration_rate', 'score', 0,
        'value', 18, 'charted', '18', 'note', ''),
    'spo2', jsonb_build_object('parameter', 'spo2', 'score', 1, 'value', 95, 'charted', '95',
        'note', 'scale 1'),
    'air_or_oxygen', jsonb_build_object('parameter', 'air_or_oxygen', 'score', 0,
        'value', false, 'charted', 'air', 'note', ''),
    'systolic_bp', jsonb_build_object('parameter', 'systolic_bp', 'score', 0, 'value', 120,
        'charted', '120', 'note', ''),
    'pulse', jsonb_build_object('parameter', 'pulse', 'score', 0, 'value', 80,
        'charted', '80', 'note', ''),
    'consciousness', jsonb_build_object('parameter', 'consciousness', 'score', 0,
        'value', 'A', 'charted', 'A', 'note', ''),
    'temperature', jsonb_build_object('parameter', 'temperature', 'score', 0, 'value', 37.0,
        'charted', '37.0', 'note', '')),
  'total', s.total, 'any_single_three', s.three,
  'risk', CASE WHEN s.total >= 7 THEN 'high' WHEN s.total >= 5 THEN 'medium'
               WHEN s.three THEN 'low-medium' ELSE 'low' END,
  'response', 'Ward-based response. Score 0: minimum 12-hourly monitoring; continue routine '
              'NEWS monitoring. Score 1-4: minimum 4-6-hourly; inform registered nurse.',
  'missing', '[]'::jsonb, 'is_partial', s.partial, 'spo2_scale', 1,
  'label', 'NEWS2 ' || s.total)"""
_NARROW_NEWS2 = (
    "jsonb_build_object('total', s.total, 'any_single_three', s.three, 'is_partial', s.partial)"
)


_OBSERVATIONS_SQL = """
        INSERT INTO remote_care_observation
            (patient_id, device_id, taken_at, received_at, heart_rate, spo2, respiratory_rate,
             temperature, systolic_bp, diastolic_bp, consciousness, on_oxygen, news2_total,
             news2_partial, news2)
        SELECT s.patient_id, d.id, s.taken_at, s.taken_at, 60 + s.total * 6, 98 - s.total / 2,
               14 + s.total, 36.8, 125 - s.total * 3, 78, 'A', false, s.total, s.partial,
               __NEWS2__
        FROM (
            SELECT %(first)s + (i %% %(n)s) AS patient_id,
                   %(start)s::timestamptz
                   + make_interval(secs => (i / %(n)s) * %(step)s + (i %% %(n)s) %% 997)
                   AS taken_at,
                   floor(13 * power(random(), 3))::int AS total,
                   random() < 0.04 AS partial,
                   random() < 0.25 AS r3
            FROM generate_series(0, %(rows)s - 1) i
        ) s0
        CROSS JOIN LATERAL (
            SELECT s0.patient_id, s0.taken_at, s0.total, s0.partial,
                   (s0.total >= 3 AND s0.r3) AS three
        ) s
        JOIN remote_care_device d ON d.patient_id = s.patient_id
"""


@dataclass(frozen=True)
class Seeded:
    patients: int
    observations: int
    alerts: int
    start: date
    end: date


def seed_population(
    cursor: Any,
    *,
    observations: int,
    patients: int,
    days: int,
    end: date,
    clinician_ids: list[int],
    wide: bool = True,
) -> Seeded:
    """Insert ``patients`` patients (responsible clinicians round-robin over clinician_ids)
    and ``observations`` sets spread evenly over the ``days`` days ending on ``end`` (UTC
    noon spacing), plus alerts. Returns what it wrote."""
    if observations % patients:
        raise ValueError("observations must be a multiple of patients")
    per_patient = observations // patients
    start_day = end - timedelta(days=days - 1)
    start = datetime.combine(start_day, datetime.min.time())
    step = days * 86400 / per_patient
    cursor.execute("SELECT setseed(0.42)")
    # Every foreign key below points at a row inserted just before it, so the per-row
    # referential-integrity triggers are skipped for speed (the server role is a superuser).
    cursor.execute("SET session_replication_role = replica")
    # A bulk load builds the observation indexes once, sorted, instead of updating six
    # B-trees row by row (several times faster); the definitions are restored verbatim.
    try:
        with _indexes_dropped(cursor, "remote_care_observation"):
            alerts = _insert(cursor, observations, patients, start, step, clinician_ids, wide)
    finally:
        cursor.execute("RESET session_replication_role")
    cursor.execute("ANALYZE")
    return Seeded(
        patients=patients,
        observations=observations,
        alerts=alerts,
        start=start_day,
        end=end,
    )


def _indexes(cursor: Any, table: str) -> list[tuple[str, str, bool]]:
    """(name, definition, is a constraint) of every index of ``table`` but the primary key."""
    cursor.execute(
        """
        SELECT COALESCE(c.conname, i.relname),
               COALESCE(pg_get_constraintdef(c.oid), pg_get_indexdef(i.oid)),
               c.oid IS NOT NULL
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype = 'u'
        WHERE x.indrelid = %s::regclass AND NOT x.indisprimary
        """,
        [table],
    )
    return [(name, definition, bool(constraint)) for name, definition, constraint in cursor]


@contextmanager
def _indexes_dropped(cursor: Any, table: str) -> Iterator[None]:
    """``table`` without its secondary indexes while the block bulk-loads it; each one is
    rebuilt afterwards from its own definition (one sorted build instead of row by row)."""
    indexes = _indexes(cursor, table)
    for name, _definition, constraint in indexes:
        if constraint:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        else:
            cursor.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        for name, definition, constraint in indexes:
            if constraint:
                cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            else:
                cursor.execute(definition)


def seed_risk_scores(cursor: Any, *, model_version_id: int) -> int:
    """One deterioration-model score per seeded set (risks drawn at random: only the query
    plans and row counts matter), loaded with the score table's indexes dropped and rebuilt
    (at 10M sets the row-by-row index updates were most of the seeding time)."""
    cursor.execute("SET session_replication_role = replica")
    try:
        with _indexes_dropped(cursor, "remote_care_riskscore"):
            cursor.execute(
                "INSERT INTO remote_care_riskscore (patient_id, observation_id, "
                "model_version_id, taken_at, risk, hours_observed, inputs, "
                "insufficient_reason, computed_at) "
                "SELECT patient_id, id, %s, taken_at, random() * random(), 24, '{}'::jsonb, "
                "'', taken_at FROM remote_care_observation",
                [model_version_id],
            )
            written = cursor.rowcount
    finally:
        cursor.execute("RESET session_replication_role")
    return written


def _insert(
    cursor: Any,
    observations: int,
    patients: int,
    start: datetime,
    step: float,
    clinician_ids: list[int],
    wide: bool,
) -> int:
    cursor.execute(
        """
        INSERT INTO patients_patient
            (mrn, given_name, family_name, birth_date, sex, source, clinical_facts, created_at)
        SELECT 'SYN-' || g, 'Synthetic', 'Patient ' || g,
               date '1925-01-01' + ((g * 7919) %% 33000),
               (ARRAY['female', 'male', 'female', 'male', 'other'])[1 + g %% 5],
               'synthetic', '{}'::jsonb, now()
        FROM generate_series(1, %s) g
        """,
        [patients],
    )
    cursor.execute("SELECT min(id), max(id) FROM patients_patient WHERE source = 'synthetic'")
    first, last = cursor.fetchone()
    cursor.execute(
        """
        INSERT INTO patients_careteammembership (patient_id, user_id, role, added_at)
        SELECT p.id, t.teams[1 + p.id %% array_length(t.teams, 1)], 'responsible', now()
        FROM patients_patient p, (SELECT %s::bigint[] AS teams) t
        WHERE p.id BETWEEN %s AND %s
        """,
        [list(clinician_ids), first, last],
    )
    cursor.execute(
        """
        INSERT INTO remote_care_monitoring (patient_id, spo2_scale, alert_state, started_at)
        SELECT id, CASE WHEN id %% 20 = 0 THEN 2 ELSE 1 END, '{}'::jsonb, now()
        FROM patients_patient WHERE id BETWEEN %s AND %s
        """,
        [first, last],
    )
    cursor.execute(
        """
        INSERT INTO remote_care_device
            (patient_id, label, token_prefix, token_hash, registered_by_id, created_at)
        SELECT id, 'synthetic kit', 'syn' || id, repeat('0', 64), %s, now()
        FROM patients_patient WHERE id BETWEEN %s AND %s
        """,
        [clinician_ids[0], first, last],
    )
    news2 = _WIDE_NEWS2 if wide else _NARROW_NEWS2
    # Totals skewed towards 0 (most home readings are unremarkable): floor(13 * u^3).
    # The only text spliced into the SQL is one of the two constant JSON expressions above.
    cursor.execute(
        _OBSERVATIONS_SQL.replace("__NEWS2__", news2),
        {
            "first": first,
            "n": patients,
            "start": start.isoformat() + "+00:00",
            "step": step,
            "rows": observations,
        },
    )
    # Alerts as the policy raises them, thinned: emergencies, urgents and some red scores;
    # four in five acknowledged after 1-60 minutes (by id / 10: every id here is a multiple
    # of 10, so "id % 5" acknowledged none).
    cursor.execute(
        """
        INSERT INTO remote_care_alert
            (patient_id, observation_id, level, status, news2_total, reason, response,
             raised_at, acknowledged_at)
        SELECT o.patient_id, o.id, a.level,
               CASE WHEN a.ack THEN 'acknowledged' ELSE 'open' END,
               o.news2_total, 'synthetic', '', o.taken_at,
               CASE WHEN a.ack
                    THEN o.taken_at + make_interval(mins => 1 + ((o.id / 10) %% 60)::int)
               END
        FROM remote_care_observation o
        CROSS JOIN LATERAL (
            SELECT CASE WHEN o.news2_total >= 7 THEN 'EMERGENCY'
                        WHEN o.news2_total >= 5 THEN 'URGENT'
                        ELSE 'RED_SCORE' END AS level,
                   (o.id / 10) %% 5 <> 0 AS ack
        ) a
        WHERE o.patient_id BETWEEN %s AND %s AND o.news2_total >= 3 AND o.id %% 10 = 0
        """,
        [first, last],
    )
    return cursor.rowcount
