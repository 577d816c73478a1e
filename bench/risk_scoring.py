"""Batch deterioration-risk scoring: N PhysioNet stays scored (a) by the bare model in one
batched call and (b) through the product: the stays' vital signs stored as monitored patients'
observation sets, then one scoring sweep on a real Celery worker (window query per patient,
the model from the registry's cache, RiskScore rows). Prints stays/second and the ratio.

Runs on the embedded default in a temporary folder (SQLite, filesystem broker, one worker).
Both sides use one torch thread: the worker is started with MEDAI_TORCH_THREADS=1, as the
bare model runs with torch.set_num_threads(1) (left to itself a worker takes all the cores,
and on a shared, busy machine its spinning threads made the sweep three times slower).

    .venv/bin/python bench/risk_scoring.py [--stays 1000] [--artifact PATH] [--runs 3]

With --runs N (default 3) it alternates the bare call and the sweep N times, the same work
each time (every score deleted once the worker is idle again), and prints every run and the
median of the per-run ratios; the first lines then carry the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import celery_worker, embedded_site  # noqa: E402  (bench/ is on sys.path)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stays", type=int, default=1000)
    parser.add_argument(
        "--artifact", help="a trained risk-model artifact (default: train a small one here)"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="alternating runs (bare call, then sweep)"
    )
    args = parser.parse_args()
    if args.runs < 1 or args.stays < 1:
        parser.error("--runs and --stays must be 1 or more")
    return args


def main() -> None:
    args = parse()
    var = embedded_site(prefix="medai-bench-risk-")
    import torch
    from django.conf import settings
    from django.core.management import call_command

    from remote_care.ml.physionet import (
        load_set_a,
        stay_from_vitals,
        stratified_split,
        vitals_from_stay,
    )
    from remote_care.ml.train import TrainConfig, train_risk_model
    from remote_care.risk.services import risk_model_from_bytes, risk_model_to_bytes

    torch.set_num_threads(1)
    folder = settings.MEDAI_PHYSIONET2012_DIR
    stays = load_set_a(folder / "set-a.tar.gz", folder / "Outcomes-a.txt", cache_dir=var / "cache")
    if args.artifact:
        content = Path(args.artifact).read_bytes()
    else:
        split = stratified_split([s.death for s in stays], seed=2012)
        model = train_risk_model(
            [stays[i] for i in split.train[:800]],
            [stays[i] for i in split.val[:300]],
            TrainConfig(spec="vitals", seeds=(0,), max_epochs=4, threads=1),
        )
        content = risk_model_to_bytes(model)
    model = risk_model_from_bytes(content)  # the object a worker holds
    origin = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=48)
    sample = stays[: args.stays]
    readings = [vitals_from_stay(s, origin) for s in sample]
    live_stays = [stay_from_vitals(r) for r in readings if r]

    def bare_run() -> float:
        """(a) the bare model: one batched call over every stay's window."""
        start = time.perf_counter()
        model.predict_proba(live_stays)
        return time.perf_counter() - start

    # (b) the product path.
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from django.db.models import OuterRef, Subquery

    from medai_site.patients.models import CareTeamMembership, Patient
    from medai_site.registry.services import model_version_activate, model_version_register
    from remote_care.models import Device, Monitoring, Observation, RiskScore
    from remote_care.risk.services import RISK_TASK

    user = get_user_model().objects.create_user("bench", password=None)
    version = model_version_register(task=RISK_TASK, artifact=content, created_by=user)
    model_version_activate(version=version, user=user, reason="benchmark setup")

    def store(pairs) -> int:
        n_sets = 0
        for i, (stay, rows) in pairs:
            if not rows:
                continue
            patient = Patient.objects.create(
                mrn=f"RISK-{i:05d}",
                given_name="Bench",
                family_name=f"Stay{stay.record_id}",
                birth_date=date(1950, 1, 1),
                sex="female" if stay.static.get("Gender") == 0 else "male",
            )
            CareTeamMembership.objects.create(patient=patient, user=user)
            Monitoring.objects.create(patient=patient)
            device = Device.objects.create(
                patient=patient,
                label="bench",
                token_prefix=f"b{i:05d}",
                token_hash="-",  # noqa: S106 (not a credential: no token matches it)
                registered_by=user,
            )
            Observation.objects.bulk_create(
                Observation(patient=patient, device=device, **row) for row in rows
            )
            n_sets += len(rows)
        return n_sets

    pairs = list(enumerate(zip(sample, readings)))
    warm = next(p for p in pairs if p[1][1])
    os.environ["MEDAI_TORCH_THREADS"] = "1"  # the worker's torch, like the bare model's
    with celery_worker(queue="default", name="benchrisk", prefetch_one=False):
        from remote_care.risk.tasks import risk_refresh

        # Warm the worker (imports, model into its cache) on one patient, untimed.
        store([warm])
        risk_refresh.delay()
        while RiskScore.objects.count() < 1:
            time.sleep(0.05)
        n_sets = store([p for p in pairs if p is not warm])
        expected = len(live_stays)
        # Timed: every patient's latest set scored (the sweep then back-fills older sets).
        newest = Observation.objects.filter(patient=OuterRef("pk")).order_by("-taken_at")
        latest_ids = list(
            Patient.objects.annotate(latest=Subquery(newest.values("pk")[:1]))
            .exclude(latest=None)
            .values_list("latest", flat=True)
        )

        def idle() -> None:
            """Until the worker's sweep (the back-fill after the latest sets) is done."""
            count, since = -1, time.perf_counter()
            while time.perf_counter() - since < 2.0:
                now = RiskScore.objects.count()
                if now != count:
                    count, since = now, time.perf_counter()
                time.sleep(0.1)

        def sweep_run() -> float:
            """(b) one sweep, until every patient's latest set is scored."""
            start = time.perf_counter()
            risk_refresh.delay()
            while RiskScore.objects.filter(observation_id__in=latest_ids).count() < expected:
                if time.perf_counter() - start > 1800:
                    raise TimeoutError("the worker did not score every patient")
                time.sleep(0.05)
            return time.perf_counter() - start

        runs = []
        for number in range(args.runs):
            idle()
            if number:
                RiskScore.objects.all().delete()  # the same work as the first run
            runs.append((bare_run(), sweep_run()))
        idle()
    bare = statistics.median(b for b, _ in runs)
    product = statistics.median(p for _, p in runs)
    ratio = statistics.median(b / p for b, p in runs)
    print(
        f"Deterioration-risk scoring, {len(live_stays)} PhysioNet stays ({n_sets} observation "
        f"sets, vitals only), model {len(model.networks)} member(s), 1 thread"
    )
    print(
        f"  (a) bare model, one batched call : {bare:8.2f} s  ({len(live_stays) / bare:8.0f} stays/s)"
    )
    print(
        f"  (b) worker sweep (DB + model)    : {product:8.2f} s  "
        f"({len(live_stays) / product:8.0f} stays/s, warm worker)"
    )
    print(f"  ratio (a)/(b) throughput         : {ratio:8.3f}")
    print(f"  (medians of {args.runs} alternating runs; each run:)")
    for number, (b, p) in enumerate(runs, start=1):
        print(f"    run {number}: bare {b:6.2f} s, sweep {p:6.2f} s, ratio {b / p:6.3f}")


if __name__ == "__main__":
    main()
