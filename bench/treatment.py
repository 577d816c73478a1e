"""Treatment options: (1) one patient scored under every arm and (2) 1,000 patients, each by
the bare model calls and by the full product path — assessment service (validation, rows, job)
-> Celery worker on the ml queue (active-model cache, effects, intervals, curve bands, Shapley
explanation, model facts) -> stored assessment.

Runs on the embedded default in a temporary folder (SQLite, filesystem broker, one real worker
process), so it needs no server; the filesystem broker polls once a second, which bounds the
product path, so --broker redis://127.0.0.1:6379/9 shows the path without that wait. Prints
times, rates and the ratios.

    .venv/bin/python bench/treatment.py [--n 1000] [--product-n 100] [--kind cox] [--broker URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="patients in the batch")
    parser.add_argument(
        "--product-n",
        type=int,
        default=100,
        help="patients sent through the product path (one job each; rate extrapolates)",
    )
    parser.add_argument("--kind", default="cox", choices=["cox", "rsf", "svm"])
    parser.add_argument("--bootstrap", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--broker",
        default="",
        help="broker URL (default: the embedded filesystem broker, which polls once a second)",
    )
    return parser.parse_args()


def best_of(repeats: int, fn) -> float:
    """The fastest of ``repeats`` runs, in seconds (the least disturbed by the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


from harness import bench_patient, celery_worker, embedded_site, wait_for_job  # noqa: E402  (bench/ is on sys.path)


def main() -> None:
    args = parse()
    embedded_site(broker=args.broker)
    import numpy as np
    from django.core.management import call_command

    from medai_ml.plain import to_plain
    from treatment.ml.bands import survival_bands
    from treatment.ml.effects import batch_effects, patient_effect
    from treatment.ml.explain import explain_patient, model_facts
    from treatment.ml.models import ModelConfig, TreatmentModel, fit_treatment_model
    from treatment.ml.trials import load_trial

    trial = load_trial("gbsg2")
    model = fit_treatment_model(
        trial, ModelConfig(kind=args.kind, n_bootstrap=args.bootstrap, seed=0)
    )
    content = model.to_bytes()
    model = TreatmentModel.from_bytes(content)  # the same object a worker would hold
    rng = np.random.default_rng(0)
    rows = trial.raw.iloc[rng.integers(0, len(trial.raw), args.n)].reset_index(drop=True)
    patients = [to_plain(r) for r in rows.to_dict("records")]
    one = patients[0]

    # (a) the bare model.
    effect_1 = best_of(args.repeats, lambda: patient_effect(model, one))

    def job_work() -> None:
        effect = patient_effect(model, one)
        explain_patient(model, one)
        survival_bands(model, one, effect.curve_times or [])
        model_facts(model)

    work_1 = best_of(args.repeats, job_work)
    batch_n = best_of(args.repeats, lambda: batch_effects(model, rows))
    loop_sample = patients[: min(200, args.n)]
    loop_per = best_of(1, lambda: [patient_effect(model, p) for p in loop_sample]) / len(
        loop_sample
    )

    # (b) the product path with a real worker process.
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from medai_site.jobs.models import Job
    from medai_site.registry.services import model_version_activate, model_version_register
    from treatment.models import TreatmentAssessment
    from treatment.services import assessment_start

    user = get_user_model().objects.create_user("bench", password=None)
    patient = bench_patient(user, birth_date="1960-01-01")
    version = model_version_register(task="treatment.gbsg2", artifact=content, created_by=user)
    model_version_activate(version=version, user=user, reason="benchmark setup")

    def assess(values: dict) -> TreatmentAssessment:
        return assessment_start(
            patient=patient, trial="gbsg2", inputs=values, horizon=None, user=user
        )

    with celery_worker():
        wait_for_job(assess(one).job)  # warm: imports, model loaded into the worker's cache
        singles = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            wait_for_job(assess(one).job)
            singles.append(time.perf_counter() - start)
        product_1 = min(singles)
        sample = patients[: args.product_n]
        start = time.perf_counter()
        jobs = [assess(p).job for p in sample]
        for job in jobs:
            wait_for_job(job)
        product_per = (time.perf_counter() - start) / len(sample)
        done = TreatmentAssessment.objects.filter(status="done").count()
        failed = Job.objects.filter(kind="treatment.assessment").exclude(status="succeeded")
        assert not failed.exists(), list(failed.values_list("error", flat=True))

    print(
        f"Treatment options, GBSG2 {args.kind} model, {len(model.bootstraps)} bootstrap refits, "
        f"{model.n_arms} arms; broker {args.broker or 'embedded filesystem'}"
    )
    print("One patient, every arm:")
    print(f"  (a) patient_effect                       : {1000 * effect_1:8.1f} ms")
    print(f"  (a) effect + explanation + bands + facts : {1000 * work_1:8.1f} ms  (the job's work)")
    print(
        f"  (b) product path (service+queue+worker)  : {1000 * product_1:8.1f} ms  "
        f"(median {1000 * statistics.median(singles):.1f} ms)"
    )
    print(f"  ratio (b)/(a) effect only : {product_1 / effect_1:7.1f}")
    print(f"  ratio (b)/(a) job's work  : {product_1 / work_1:7.1f}")
    print(f"{args.n} patients:")
    print(
        f"  (a) batch_effects, one call   : {batch_n:8.3f} s  ({args.n / batch_n:9.0f} patients/s)"
    )
    print(
        f"  (a) patient_effect in a loop  : {loop_per * args.n:8.3f} s  "
        f"({1 / loop_per:9.0f} patients/s; timed on {len(loop_sample)})"
    )
    print(
        f"  (b) product path, one job each: {product_per * args.n:8.3f} s  "
        f"({1 / product_per:9.1f} patients/s; timed on {len(sample)}, {done} stored)"
    )
    print(f"  ratio loop/batch   : {loop_per * args.n / batch_n:7.1f}")
    print(f"  ratio product/batch: {product_per * args.n / batch_n:7.1f}")


if __name__ == "__main__":
    main()
