"""The audit trail's hash chain: tampering by raw SQL is found by `manage.py audit_verify`,
concurrent writers never fork the chain, and SQLite refuses UPDATE/DELETE like PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from medai_site.audit import chain
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from tests.platform.factories import patient_for

ROOT = Path(__file__).resolve().parents[2]


def _verify(*args: str) -> tuple[int, str]:
    """Run audit_verify; (exit status, what it printed)."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("audit_verify", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code), out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()


def _raw(sql: str, params: list | None = None) -> None:
    """Tamper the way an attacker with the table owner's role could (trigger switched off)."""
    with connection.cursor() as cursor:
        # The test's own inserts leave deferred foreign-key checks pending; ALTER TABLE
        # needs them done.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute(sql, params or [])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")


@pytest.fixture
def trail(users):
    patient = patient_for(users.clinician_a)
    events = [
        audit_record(
            action=AuditEvent.Action.PATIENT_VIEWED,
            actor=users.clinician_a,
            patient=patient,
            detail={"n": i, "ratio": 0.1 * i, "big": 1e300, "nested": {"b": [1, "x"], "a": None}},
        )
        for i in range(5)
    ]
    return events


@pytest.mark.django_db
def test_each_event_links_to_the_previous_one(trail):
    rows = list(AuditEvent.objects.order_by("sequence").values(*chain.CHAIN_FIELDS))
    assert [r["sequence"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == chain.GENESIS
    for before, after in zip(rows, rows[1:]):
        assert after["prev_hash"] == before["row_hash"]
    # The hash is over the row as the database gives it back (jsonb numbers, inet, timestamptz).
    assert all(chain.row_hash(r) == r["row_hash"] for r in rows)
    status, output = _verify()
    assert status == 0
    assert f"OK: 5 audit event(s), chain intact. Head: 5:{rows[-1]['row_hash']}" in output


@pytest.mark.django_db
def test_an_empty_trail_verifies_and_its_head_anchors_the_next_run(db):
    assert _verify() == (0, f"OK: 0 audit event(s), chain intact. Head: 0:{chain.GENESIS}\n")
    audit_record(action=AuditEvent.Action.EXPORTED, username="first")
    assert _verify("--anchor", f"0:{chain.GENESIS}")[0] == 0


@pytest.mark.django_db
def test_a_changed_field_is_reported_as_altered(trail):
    target = trail[2]
    _raw("UPDATE audit_auditevent SET actor_username = 'someone_else' WHERE id = %s", [target.pk])
    status, output = _verify()
    assert status == 1
    assert f"BROKEN at row id {target.pk} (sequence 3): altered" in output
    assert f"but the chain recorded {target.row_hash}" in output
    assert "2 row(s) before it are intact" in output


@pytest.mark.django_db
def test_a_changed_detail_or_ip_address_is_reported(trail):
    _raw("UPDATE audit_auditevent SET detail = '{\"n\": 99}' WHERE id = %s", [trail[4].pk])
    status, output = _verify()
    assert status == 1 and f"row id {trail[4].pk} (sequence 5): altered" in output


@pytest.mark.django_db
def test_a_deleted_row_is_reported_with_the_gap(trail):
    _raw("DELETE FROM audit_auditevent WHERE id = %s", [trail[1].pk])
    status, output = _verify()
    assert status == 1
    assert f"BROKEN at row id {trail[2].pk} (sequence 3): deleted" in output
    assert "1 row(s) before" in output and "(sequence 2)" in output
    assert f"Expected {trail[0].row_hash}, stored {trail[1].row_hash}" in output


@pytest.mark.django_db
def test_deleting_the_first_rows_is_reported(trail):
    _raw("DELETE FROM audit_auditevent WHERE sequence <= 2")
    status, output = _verify()
    assert status == 1
    assert f"row id {trail[2].pk} (sequence 3): deleted" in output
    assert "sequences 1-2" in output


@pytest.mark.django_db
def test_an_inserted_row_is_reported(trail):
    # A forged event slipped in after the third one, the later rows renumbered to make room.
    _raw("UPDATE audit_auditevent SET sequence = sequence + 100 WHERE sequence > 3")
    _raw("UPDATE audit_auditevent SET sequence = sequence - 99 WHERE sequence > 100")
    _raw(
        "INSERT INTO audit_auditevent (actor_username, action, outcome, object_type, object_id,"
        " object_repr, user_agent, path, detail, created_at, sequence, prev_hash, row_hash)"
        " VALUES ('clin_a', 'login', 'success', '', '', '', '', '', '{}', now(), 4, %s, %s)",
        [trail[2].row_hash, "f" * 64],
    )
    forged = AuditEvent.objects.get(sequence=4)
    status, output = _verify()
    assert status == 1
    assert f"BROKEN at row id {forged.pk} (sequence 4): inserted" in output


@pytest.mark.django_db
def test_a_row_appended_by_sql_is_reported(trail):
    _raw(
        "INSERT INTO audit_auditevent (actor_username, action, outcome, object_type, object_id,"
        " object_repr, user_agent, path, detail, created_at, sequence, prev_hash, row_hash)"
        " VALUES ('x', 'login', 'success', '', '', '', '', '', '{}', now(), 6, %s, %s)",
        ["0" * 64, "1" * 64],
    )
    status, output = _verify()
    assert status == 1 and "(sequence 6): inserted" in output


@pytest.mark.django_db
def test_an_anchor_catches_a_truncated_or_rechained_trail(trail):
    status, output = _verify()
    head = output.rsplit("Head: ", 1)[1].strip()
    assert _verify("--anchor", head)[0] == 0
    # Deleting the newest rows leaves an intact (shorter) chain; the anchor still sees it.
    _raw("DELETE FROM audit_auditevent WHERE sequence >= 4")
    status, output = _verify("--anchor", head)
    assert status == 1
    assert "BROKEN anchor: sequence 5 no longer exists" in output
    with pytest.raises(CommandError, match="expected SEQUENCE:HASH"):
        _verify("--anchor", "5:nothex")


@pytest.mark.django_db
def test_audit_verify_reports_a_switched_off_guard(trail):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
    status, output = _verify()
    assert status == 1
    assert "GUARD MISSING: the append-only trigger audit_event_append_only" in output


@pytest.mark.django_db
def test_ipv6_and_unicode_values_verify(users):
    from django.test import RequestFactory

    request = RequestFactory().get(
        "/patients/?q=Zoë", REMOTE_ADDR="2001:DB8:0:0::1", HTTP_USER_AGENT="Браузер"
    )
    request.user = users.clinician_a
    audit_record(action=AuditEvent.Action.PATIENT_LIST_VIEWED, request=request, detail={1: "é"})
    assert _verify()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(15):
                audit_record(action=AuditEvent.Action.EXPORTED, username=f"w{n}", detail={"i": i})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    status, output = _verify()
    assert status == 0, output
    assert "OK: 90 audit event(s)" in output


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_event_leaves_no_gap_and_a_long_transaction_delays_others():
    """A writer inside a long transaction holds the chain until it ends; when it rolls
    back, its event vanishes and the waiting writer links to the last committed row."""
    holding, release = threading.Event(), threading.Event()
    waiting_done = threading.Event()

    audit_record(action=AuditEvent.Action.EXPORTED, username="first")

    def long_transaction() -> None:
        try:
            with transaction.atomic():
                audit_record(action=AuditEvent.Action.EXPORTED, username="rolled_back")
                holding.set()
                release.wait(10)
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        finally:
            connection.close()

    def other_writer() -> None:
        try:
            audit_record(action=AuditEvent.Action.EXPORTED, username="second")
            waiting_done.set()
        finally:
            connection.close()

    long_thread = threading.Thread(target=long_transaction)
    long_thread.start()
    assert holding.wait(10)
    other = threading.Thread(target=other_writer)
    other.start()
    # The other writer waits on the chain lock while the long transaction is open.
    assert not waiting_done.wait(1)
    release.set()
    long_thread.join()
    other.join()
    assert waiting_done.is_set()
    rows = list(AuditEvent.objects.order_by("sequence").values_list("sequence", "actor_username"))
    assert rows == [(1, "first"), (2, "second")]
    assert _verify()[0] == 0


def _sqlite_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="medai_site.settings.local",
        MEDAI_VAR_DIR=str(tmp_path / "var"),
        DJANGO_SECRET_KEY="sqlite-audit-test-key-0123456789-0123456789-0123456789",
    )
    return env


SQLITE_SCRIPT = """
import datetime as dt, io
import django
django.setup()
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

def verify():
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
    except SystemExit as exc:
        print("exit", exc.code)
    print("verify:", out.getvalue().strip(), err.getvalue().strip())

# The trail as it was before the chain, with events written the old way.
call_command("migrate", "audit", "0002", verbosity=0)
with connection.cursor() as c:
    for i in range(3):
        c.execute(
            "INSERT INTO audit_auditevent (actor_username, action, outcome, object_type,"
            " object_id, object_repr, ip_address, user_agent, path, detail, created_at)"
            " VALUES (%s, 'login', 'success', '', '', '', '10.0.0.1', '', '/', %s, %s)",
            [f"old{i}", '{"k": 1.5}', dt.datetime(2026, 1, 1, 8, i, tzinfo=dt.UTC)],
        )
call_command("migrate", "audit", verbosity=0)
verify()

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record

event = audit_record(action=AuditEvent.Action.EXPORTED, username="embedded")
for sql in ("UPDATE audit_auditevent SET action = 'login' WHERE id = %s",
            "DELETE FROM audit_auditevent WHERE id = %s"):
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    except DatabaseError as exc:
        print("refused:", exc)
    else:
        print("ACCEPTED:", sql)
print("count", AuditEvent.objects.count(), AuditEvent.objects.get(pk=event.pk).action)
verify()
# Drop one guard (what a later table rebuild would do): audit_verify says so.
connection.cursor().execute("DROP TRIGGER audit_event_no_delete")
verify()
"""


@pytest.mark.e2e
def test_sqlite_refuses_update_and_delete_and_backfills_the_chain(tmp_path):
    """The embedded default (SQLite, in a process of its own): events written before the
    chain are back-filled by the migration, then raw UPDATE/DELETE are refused."""
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT],
        cwd=ROOT,
        env=_sqlite_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    assert "verify: OK: 3 audit event(s), chain intact" in out, out + result.stderr
    assert "ACCEPTED" not in out
    assert out.count("refused: audit_auditevent is append-only") == 2
    assert "count 4 exported" in out
    assert "verify: OK: 4 audit event(s), chain intact" in out
    assert "exit 1" in out
    assert "GUARD MISSING: the append-only trigger audit_event_no_delete" in out


# --- The walk itself, on rows in memory (no database) -----------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _chain_rows(details: list) -> list[dict]:
    import datetime as dt

    rows, prev = [], chain.GENESIS
    for i, detail in enumerate(details, start=1):
        row = {
            "id": 100 + i,
            "sequence": i,
            "prev_hash": prev,
            "actor_id": None,
            "actor_username": f"u{i}",
            "action": "exported",
            "outcome": "success",
            "object_type": "",
            "object_id": "",
            "object_repr": "",
            "patient_id": i,
            "ip_address": "10.0.0.1",
            "user_agent": "",
            "path": "/",
            "detail": detail,
            "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
        }
        row["row_hash"] = prev = chain.row_hash(row)
        rows.append(row)
    return rows


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    details=st.lists(json_values, min_size=2, max_size=8),
    data=st.data(),
)
def test_any_single_tampering_is_found_at_its_row(details, data):
    rows = _chain_rows(details)
    assert chain.chain_verify(rows).ok and chain.chain_verify(rows).count == len(rows)
    victim = data.draw(st.integers(0, len(rows) - 1))
    kind = data.draw(st.sampled_from(["altered", "deleted", "inserted"]))
    tampered = [dict(row) for row in rows]
    if kind == "altered":
        tampered[victim]["actor_username"] += "x"
        expected_row = rows[victim]["id"]
    elif kind == "deleted":
        del tampered[victim]
        if victim == len(rows) - 1:
            # Cutting the newest row leaves an intact, shorter chain: only an anchor sees it.
            assert chain.chain_verify(tampered).ok
            return
        expected_row = rows[victim + 1]["id"]
    else:
        forged = dict(rows[victim], id=999, actor_username="forged")
        forged["row_hash"] = chain.row_hash(forged)
        tampered.insert(victim, forged)
        for later in tampered[victim + 1 :]:
            later["sequence"] += 1  # renumbered to make room, hashes left as they were
        expected_row = 999
    verdict = chain.chain_verify(tampered)
    assert not verdict.ok
    assert (verdict.broken.row_id, verdict.broken.kind) == (expected_row, kind)
    assert verdict.count == victim


def test_numbers_hash_by_value_as_jsonb_returns_them():
    # PostgreSQL's jsonb gives 1e300 back as a 301-digit integer and -0.0 as 0.
    as_written = _chain_rows([{"a": 1e300, "b": -0.0, "c": 1.50, "d": 1e16}])[0]
    as_read = dict(as_written, detail={"a": 10**300, "b": 0, "c": 1.5, "d": 10**16})
    assert chain.row_hash(as_read) == as_written["row_hash"]
    assert (
        chain.row_hash(dict(as_written, detail={"a": 10**300 + 1, "b": 0, "c": 1.5, "d": 10**16}))
        != as_written["row_hash"]
    )
    # The same address spelt two ways is one address.
    v6 = _chain_rows([{}])[0] | {"ip_address": "2001:db8::1"}
    assert chain.row_hash(v6) == chain.row_hash(v6 | {"ip_address": "2001:DB8:0:0:0:0:0:1"})
