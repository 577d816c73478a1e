"""Throughput of MedAI's DICOM receiver against a plain Orthanc, in the same run (issue #15).

dcmtk's storescu sends the same study of N CT instances (pydicom's CT_small, 128x128,
re-labelled as one known patient) once to MedAI's receiver and once to a private Orthanc
(tests/support/orthanc.py). MedAI's time runs from the start of storescu until every
instance is matched, checked, de-identified and stored with its job queued (the study is
filed at release, settle time 0); Orthanc's until storescu returns (Orthanc stores each
instance before it answers). Prints instances per second for both and the ratio. Runs on
the embedded default (SQLite, filesystem broker) in a temporary folder; needs dcmtk and
orthanc (Debian packages).

    .venv/bin/python bench/dicom_receive.py [--n 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import embedded_site  # noqa: E402  (bench/ is on sys.path)

# dcmtk's storescu, not the same-named pynetdicom script the virtualenv puts first on PATH.
STORESCU = "/usr/bin/storescu"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def storescu(aec: str, port: int, folder: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [STORESCU, "-aet", "BENCH", "-aec", aec, "+sd", "127.0.0.1", str(port), str(folder)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="instances in the study")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (best is kept)")
    args = parser.parse_args()
    var = embedded_site(prefix="medai-bench-dicom-")
    import logging

    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from diagnosis.models import Scan
    from diagnosis.pacs.receiver import Receiver
    from medai_site.patients.models import CareTeamMembership, Patient
    from tests.diagnosis.pacs.studies import study_files
    from tests.support.orthanc import orthanc_running

    logging.disable(logging.INFO)
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password=None)
    patient = Patient.objects.create(
        mrn="BENCH-1",
        given_name="Ada",
        family_name="Bench",
        birth_date=datetime.date(1950, 1, 1),
        sex="F",
    )
    CareTeamMembership.objects.create(patient=patient, user=user)
    receiver = Receiver(ae_title="MEDAI", allow=[])
    receiver.settle_seconds = 0.0
    port = free_port()
    receiver.start(host="127.0.0.1", port=port, block=False)
    medai, orthanc = [], []
    with tempfile.TemporaryDirectory() as tmp, orthanc_running(Path(tmp) / "orthanc") as pacs:
        for run in range(args.repeat):
            folder = Path(tmp) / f"study{run}"
            study_files(
                folder, patient_id="BENCH-1", name="BENCH^ADA", birth_date="19500101", count=args.n
            )
            before = Scan.objects.count()
            started = time.perf_counter()
            storescu("MEDAI", port, folder)
            while Scan.objects.count() < before + args.n:
                if time.perf_counter() - started > 600:
                    raise SystemExit("MedAI did not store the study within 10 minutes")
                time.sleep(0.01)
            medai.append(time.perf_counter() - started)
            orthanc.append(storescu(pacs.aet, pacs.dicom_port, folder))
    receiver.stop()
    best_medai, best_orthanc = min(medai), min(orthanc)
    print(f"instances per study: {args.n} (CT 128x128, explicit VR LE), best of {args.repeat}")
    print(
        f"MedAI receiver (matched, checked, de-identified, stored): {args.n / best_medai:8.1f} /s"
    )
    print(f"Orthanc {pacs.aet} (stored):{'':31}{args.n / best_orthanc:8.1f} /s")
    print(f"ratio MedAI / Orthanc: {best_orthanc / best_medai:.2f}")
    print(f"(embedded default under {var})")


if __name__ == "__main__":
    main()
