"""Diagnosis inference: the same N real test images scored by (a) the bare PyTorch model in a
loop at batch 1 and batch 64, and (b) the full product path — upload service (validation,
frame preparation) -> Celery worker on the ml queue -> stored predictions with heat-maps.

Runs on the embedded default in a temporary folder (SQLite, filesystem broker, one real worker
process), so it needs no server. Prints scans/second for each and the ratios.

    .venv/bin/python bench/diagnosis_inference.py [--n 256] [--artifact model.bin]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="test images to score")
    parser.add_argument("--artifact", type=Path, help="model artifact (default: train a quick one)")
    parser.add_argument("--repeats", type=int, default=3)
    return parser.parse_args()


from harness import bench_patient, celery_worker, embedded_site, wait_for_job  # noqa: E402  (bench/ is on sys.path)


def main() -> None:
    args = parse()
    embedded_site()
    import torch
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from PIL import Image

    from diagnosis.ml.artifact import artifact_bytes, load_artifact
    from diagnosis.ml.data import load_npz, prepare_images

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
    model = bundle.model.eval()

    # (a) the bare model: preprocessing once, then forward passes only.
    x = prepare_images(
        images,
        input_size=bundle.input_size,
        channels=bundle.in_channels,
        normalisation=bundle.normalisation,
    )
    bare = {}
    for batch in (1, 64):
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.inference_mode():
                for i in range(0, len(x), batch):
                    model(x[i : i + batch])
            best = min(best, time.perf_counter() - start)
        bare[batch] = len(images) / best

    # (b) the product path with a real worker process.
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from diagnosis.models import ImageDataset, Prediction
    from diagnosis.services import scan_upload
    from medai_site.jobs.models import Job
    from medai_site.registry.services import model_version_activate, model_version_register

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
    model_version_activate(version=version, user=user)
    pngs = []
    for img in images:
        buffer = io.BytesIO()
        Image.fromarray(img).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())

    with celery_worker():
        # Warm the worker (imports torch, loads the model into its cache) with one scan.
        warm = scan_upload(
            patient=patient,
            uploaded_by=user,
            task="diagnosis.bench",
            files=[SimpleUploadedFile("w.png", pngs[0])],
        )
        wait_for_job(warm.job)
        product = float("inf")
        upload_s = worker_s = 0.0
        for _ in range(args.repeats):
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
        job_runs = Job.objects.filter(kind="diagnosis.inference", status="succeeded").count()
    product_rate = len(images) / product
    print(
        f"Diagnosis inference, {len(images)} PneumoniaMNIST test images, "
        f"{torch.get_num_threads()} torch threads, arch {bundle.arch}"
    )
    print(f"  (a) bare model, batch 1 : {bare[1]:9.1f} scans/s")
    print(f"  (a) bare model, batch 64: {bare[64]:9.1f} scans/s")
    print(
        f"  (b) product path        : {product_rate:9.1f} scans/s  "
        f"(upload service {upload_s:.2f} s + worker/queue {worker_s:.2f} s; {job_runs} jobs)"
    )
    print(f"  ratio (b)/(a) batch 1 : {product_rate / bare[1]:.3f}")
    print(f"  ratio (b)/(a) batch 64: {product_rate / bare[64]:.3f}")


if __name__ == "__main__":
    main()
