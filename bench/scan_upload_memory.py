"""Peak memory of one scan upload of many highly compressible images (issue #12, defect 9).

N uniform grey PNGs of SIDE x SIDE pixels (a few kB each, SIDE*SIDE decoded values each) go
through diagnosis.services.scan_upload in one call, as one request's files would. Prints the
peak Python/NumPy allocation during the call (tracemalloc) and the process's peak resident
set size. Runs on the embedded default in a temporary folder (SQLite), so it needs no server.
Run it from two checkouts (before/after a change) to compare; the numbers are per process.

    .venv/bin/python bench/scan_upload_memory.py [--n 40] [--side 2048]
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import bench_patient, embedded_site  # noqa: E402  (bench/ is on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="files in the upload")
    parser.add_argument("--side", type=int, default=2048, help="pixels per side of each image")
    args = parser.parse_args()
    embedded_site()
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from PIL import Image

    from diagnosis.services import scan_upload

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password=None)
    patient = bench_patient(user)
    files = []
    for i in range(args.n):
        buffer = io.BytesIO()
        Image.fromarray(np.full((args.side, args.side), i % 256, np.uint8)).save(
            buffer, format="PNG", optimize=True
        )
        files.append(SimpleUploadedFile(f"{i}.png", buffer.getvalue(), "image/png"))
    compressed = sum(f.size for f in files)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    error = ""
    try:
        outcome = scan_upload(patient=patient, files=files, uploaded_by=user, task="bench")
        stored = len(outcome.scans)
    except Exception as exc:  # the bounded version may refuse the upload (413)
        stored, error = 0, f"{type(exc).__name__}: {exc}"
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.n} PNGs {args.side}x{args.side} ({compressed / 1e6:.2f} MB compressed, "
        f"{args.n * args.side**2 / 1e6:.0f} M values decoded): stored {stored}; "
        f"peak traced {(peak - base) / 2**20:.0f} MiB; peak RSS {rss_mb:.0f} MiB"
        + (f"; {error}" if error else "")
    )


if __name__ == "__main__":
    main()
