"""The cost of the audit trail's hash chain (PostgreSQL).

Writes N audit events through ``audit_record`` (advisory lock, head read, SHA-256, insert in
one transaction) and N through the write path the trail had before the chain (one INSERT in
autocommit, the chain columns filled with constants), side by side in one process, from one
thread and from several threads at once (the chain lock serialises writers); then times
``audit_verify``'s walk over the chained rows. Prints events per second and the ratios.

Needs the PostgreSQL the test suite uses (127.0.0.1:5432, trust auth); it creates and drops
its own database `medai_bench_audit`.

    .venv/bin/python bench/audit_chain.py [--events 5000] [--threads 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import postgres_site  # noqa: E402  (bench/ is on sys.path)

DB = "medai_bench_audit"
DETAIL = {"page": "patient", "query": "smith", "shown": list(range(25)), "ratio": 0.25}


def _unchained_writer() -> Callable[[object], None]:
    """The pre-chain audit_record: build the row, one INSERT, no lock, no hash."""
    from django.utils import timezone

    from medai_site.audit.models import AuditEvent

    # Negative sequences stay clear of the chain's 1, 2, 3, ...; thread-safe under the GIL.
    counter = itertools.count(-1, -1)

    def write(patient: object) -> None:
        AuditEvent(
            actor_username="bench",
            action=AuditEvent.Action.PATIENT_VIEWED,
            patient=patient,
            ip_address="10.0.0.1",
            user_agent="bench",
            path="/patients/1/",
            detail=DETAIL,
            created_at=timezone.now(),
            sequence=next(counter),
            prev_hash="0" * 64,
            row_hash="0" * 64,
        ).save(force_insert=True)

    return write


def _chained_write(patient: object) -> None:
    from medai_site.audit.models import AuditEvent
    from medai_site.audit.services import audit_record

    audit_record(
        action=AuditEvent.Action.PATIENT_VIEWED, username="bench", patient=patient, detail=DETAIL
    )


def _rate(write: Callable[[object], None], patient: object, events: int, threads: int) -> float:
    """Events per second writing ``events`` rows from ``threads`` threads."""
    from django.db import connection

    per_thread = events // threads

    def run() -> None:
        try:
            for _ in range(per_thread):
                write(patient)
        finally:
            connection.close()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return per_thread * threads / (time.perf_counter() - began)


def _truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")


def bench(events: int, threads: int, repeats: int) -> None:
    from medai_site.audit.selectors import audit_chain_verify
    from medai_site.patients.models import Patient

    patient = Patient.objects.create(
        mrn="BENCH1", given_name="A", family_name="B", birth_date="1970-01-01"
    )
    print(f"audit events per second, median of {repeats} runs of {events} events")
    print(f"{'writers':>8} {'before (no chain)':>18} {'hash chain':>12} {'chain / before':>15}")
    for n_threads in sorted({1, threads}):
        before, after = [], []
        for _ in range(repeats):
            _truncate()
            before.append(_rate(_unchained_writer(), patient, events, n_threads))
            _truncate()
            after.append(_rate(_chained_write, patient, events, n_threads))
        b, a = statistics.median(before), statistics.median(after)
        print(f"{n_threads:>8} {b:>18.0f} {a:>12.0f} {a / b:>15.2f}")
    verdict = None
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        verdict = audit_chain_verify()
        times.append(time.perf_counter() - began)
    assert verdict is not None and verdict.ok, verdict
    walk = statistics.median(times)
    print(f"audit_verify: {verdict.count} rows in {walk:.3f} s ({verdict.count / walk:.0f} rows/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with postgres_site(DB):
        bench(args.events, args.threads, args.repeats)


if __name__ == "__main__":
    main()
