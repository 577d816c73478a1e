"""Diagnosis inference: the same N real test images scored by (a) the bare model and (b) the
full product path — upload service (validation, de-identification, frame preparation) ->
Celery worker on the ml queue -> stored predictions with heat-maps.

(a) is measured two ways: the forward pass alone (what the bench measured first), and the
same work the worker does per scan — the 7 test-time-augmentation views, Grad-CAM for the
predicted class and the out-of-distribution score, through ``diagnosis.ml.predict`` — in
batches of 1 and 64. The second is the fair comparison: product / same-work at batch 64.

Runs on the embedded default in a temporary folder (SQLite, one real worker process), so it
needs no server. The broker is kombu's filesystem transport (polled every 0.1 s) unless
``--broker redis://127.0.0.1:6379/11`` names a Redis broker (queues purged first).
``--latency N`` then uploads N single scans one at a time and prints the p50 / p95 from the
upload call to the stored prediction (the job's success commits with it), with the upload
service's own share; ``--latency-only`` skips the throughput run.

    .venv/bin/python bench/diagnosis_inference.py [--n 256] [--artifact model.bin]
        [--repeats 3] [--broker URL] [--latency 30] [--latency-only]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="test images to score")
    parser.add_argument("--artifact", type=Path, help="model artifact (default: train a quick one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--broker", help="Celery broker URL (default: the embedded filesystem broker)"
    )
    parser.add_argument(
        "--latency", type=int, default=0, help="single-scan uploads to time one at a time"
    )
    parser.add_argument("--latency-only", action="store_true", help="skip the throughput run")
    return parser.parse_args()


from harness import bench_patient, celery_worker, embedded_site, wait_for_job  # noqa: E402  (bench/ is on sys.path)


def _best_rate(count: int, repeats: int, run: Any) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def _bare(bundle: Any, images: list[Any], repeats: int) -> dict[str, float]:
    """Scans/second of the bare model: forward only, and the worker's work per scan."""
    import torch

    from diagnosis.ml.data import prepare_images
    from diagnosis.ml.predict import predict

    model = bundle.model.eval()
    x = prepare_images(
        images,
        input_size=bundle.input_size,
        channels=bundle.in_channels,
        normalisation=bundle.normalisation,
    )
    rates: dict[str, float] = {}
    for batch in (1, 64):

        def forward(batch: int = batch) -> None:
            with torch.inference_mode():
                for i in range(0, len(x), batch):
                    model(x[i : i + batch])

        rates[f"forward {batch}"] = _best_rate(len(images), repeats, forward)
        rates[f"same work {batch}"] = _best_rate(
            len(images), repeats, lambda batch=batch: predict(bundle, images, batch_size=batch)
        )
    return rates


def _latency(*, patient: Any, user: Any, png: bytes, count: int) -> tuple[list[float], list[float]]:
    """Upload one scan at a time; seconds from the upload call to the stored prediction, and
    the upload service's own seconds."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from diagnosis.services import scan_upload

    totals, uploads = [], []
    for i in range(count):
        start = time.perf_counter()
        outcome = scan_upload(
            patient=patient,
            uploaded_by=user,
            task="diagnosis.bench",
            files=[SimpleUploadedFile(f"single-{i}.png", png)],
        )
        uploads.append(time.perf_counter() - start)
        wait_for_job(outcome.job, poll=0.002)
        totals.append(time.perf_counter() - start)
    return totals, uploads


def _pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def main() -> None:  # noqa: C901  (one linear script: set-up, bare, product, latency, report)
    args = parse()
    embedded_site(broker=args.broker)
    import torch
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from PIL import Image

    from diagnosis.ml.artifact import artifact_bytes, load_artifact
    from diagnosis.ml.data import load_npz

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    npz = ROOT / "data" / "medmnist" / "pneumoniamnist.npz"
    data = load_npz(npz, class_names=("normal", "pneumonia"))
    images = [img[..., 0] for img in data.test_images[: args.n]]
    if args.artifact:
        content = args.artifact.read_bytes()
    else:
        from diagnosis.ml.train import TrainConfig, train

        small = data.subset(train=1000, val=200, test=200, seed=0)
        content = artifact_bytes(train(small, TrainConfig(epochs=3, seed=0)).to_bundle())
    bundle = load_artifact(content)
    bare = {} if args.latency_only else _bare(bundle, images, args.repeats)

    # (b) the product path with a real worker process.
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from diagnosis.models import ImageDataset, Prediction
    from diagnosis.services import scan_upload
    from medai_site.celery import app
    from medai_site.jobs.models import Job
    from medai_site.registry.services import model_version_activate, model_version_register

    if args.broker:
        app.control.purge()  # nothing left over from an earlier run reaches this worker
    user = get_user_model().objects.create_user("bench", password=None)
    patient = bench_patient(user)
    ImageDataset.objects.create(
        name="bench",
        task="diagnosis.bench",
        kind="npz",
        path=str(npz),
        class_names=list(bundle.class_names),
    )
    version = model_version_register(task="diagnosis.bench", artifact=content, created_by=user)
    model_version_activate(version=version, user=user, reason="benchmark setup")
    pngs = []
    for img in images:
        buffer = io.BytesIO()
        Image.fromarray(img).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())

    product = float("inf")
    upload_s = worker_s = 0.0
    latency: tuple[list[float], list[float]] = ([], [])
    with celery_worker():
        # Warm the worker (imports torch, loads the model into its cache) with one scan.
        warm = scan_upload(
            patient=patient,
            uploaded_by=user,
            task="diagnosis.bench",
            files=[SimpleUploadedFile("w.png", pngs[0])],
        )
        wait_for_job(warm.job)
        for _ in range(0 if args.latency_only else args.repeats):
            files = [SimpleUploadedFile(f"{i}.png", b) for i, b in enumerate(pngs)]
            start = time.perf_counter()
            outcome = scan_upload(
                patient=patient, uploaded_by=user, task="diagnosis.bench", files=files
            )
            uploaded = time.perf_counter()
            wait_for_job(outcome.job)
            total = time.perf_counter() - start
            assert Prediction.objects.filter(scan__upload=outcome.upload).count() == len(pngs)
            if total < product:
                product, upload_s, worker_s = total, uploaded - start, total - (uploaded - start)
        if args.latency:
            latency = _latency(patient=patient, user=user, png=pngs[1], count=args.latency)
        job_runs = Job.objects.filter(kind="diagnosis.inference", status="succeeded").count()
    print(
        f"Diagnosis inference, {len(images)} PneumoniaMNIST test images, "
        f"{torch.get_num_threads()} torch threads, arch {bundle.arch}, "
        f"broker {args.broker or 'embedded filesystem'}, load average "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    if not args.latency_only:
        product_rate = len(images) / product
        for key, label in (
            ("forward 1", "forward only, batch 1"),
            ("forward 64", "forward only, batch 64"),
            ("same work 1", "TTA + Grad-CAM + OOD, batch 1"),
            ("same work 64", "TTA + Grad-CAM + OOD, batch 64"),
        ):
            print(f"  (a) bare model, {label:<31}: {bare[key]:9.1f} scans/s")
        print(
            f"  (b) product path{'':<31}: {product_rate:9.1f} scans/s  "
            f"(upload service {upload_s:.2f} s + worker/queue {worker_s:.2f} s; {job_runs} jobs)"
        )
        for key in ("forward 1", "forward 64", "same work 1", "same work 64"):
            print(f"  ratio (b)/(a) {key:<13}: {product_rate / bare[key]:.3f}")
    if latency[0]:
        totals, uploads = latency
        print(
            f"  single-scan latency, {len(totals)} uploads one at a time (upload call -> stored "
            f"prediction): p50 {_pct(totals, 50):.3f} s, p95 {_pct(totals, 95):.3f} s; "
            f"upload service p50 {_pct(uploads, 50):.3f} s"
        )


if __name__ == "__main__":
    main()
