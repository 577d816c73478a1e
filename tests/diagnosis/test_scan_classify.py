"""`manage.py scan_classify`: a folder through the upload's checks, the applicability gate and
the model in service, one line per file, nothing stored."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.core.management import CommandError, call_command
from PIL import Image, ImageDraw
from pydicom.data import get_testdata_file

from diagnosis.ml.data import load_npz
from tests.diagnosis.model_versions import PNEUMONIA_NPZ

NEMA_DIR = Path(
    os.environ.get(
        "MEDAI_NEMA_WG04_DIR",
        Path(__file__).resolve().parents[3] / "shared" / "datasets" / "dicom" / "nema-wg04",
    )
)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    (folder / "nested").mkdir(parents=True)
    ct = NEMA_DIR / "CT1_UNC"
    if not ct.is_file():
        pytest.skip("NEMA WG-04 is not mounted")
    (folder / "ct.dcm").write_bytes(ct.read_bytes())
    chest = get_testdata_file("RG1_UNCR.dcm", download=False)
    if chest is None:
        pytest.skip("pydicom-data is not installed")
    dataset = pydicom.dcmread(chest)
    dataset.BurnedInAnnotation = "YES"
    dataset.save_as(folder / "nested" / "burned.dcm")
    canvas = Image.new("L", (256, 256), color=255)
    draw = ImageDraw.Draw(canvas)
    for line in range(12):
        draw.text((8, 8 + 20 * line), "Findings: no acute cardiopulmonary process.", fill=0)
    canvas.save(folder / "report.png")
    xray = load_npz(PNEUMONIA_NPZ).test_images[0, :, :, 0]
    Image.fromarray(np.asarray(xray)).resize((224, 224)).save(folder / "nested" / "xray.png")
    (folder / "notes.txt").write_text("not an image\n")
    return folder


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("scan_classify", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_one_line_per_file_and_nothing_stored(active_model, tmp_path: Path) -> None:
    from diagnosis.models import Prediction, Scan, ScanUpload

    folder = _folder(tmp_path)
    lines = dict(
        line.split(": ", 1)
        for line in _run("--task", "diagnosis.pneumonia", str(folder)).splitlines()
    )
    assert set(lines) == {
        str(folder / name)
        for name in ("ct.dcm", "nested/burned.dcm", "nested/xray.png", "notes.txt", "report.png")
    }
    assert lines[str(folder / "ct.dcm")].startswith(
        "out of scope (not scored: this model reads chest radiographs (CR/DX, chest); this is a CT"
    )
    assert lines[str(folder / "nested" / "burned.dcm")].startswith(
        "rejected (This image is held back"
    )
    assert lines[str(folder / "notes.txt")].startswith("rejected (")
    report = lines[str(folder / "report.png")]
    assert report.startswith(
        "out of scope (not scored: outside this model's scope. This model reads "
    )
    assert "this PNG image does not look like them" in report
    assert "out-of-distribution score " in report
    assert lines[str(folder / "nested" / "xray.png")].startswith("normal 0.")
    assert "pneumonia 0." in lines[str(folder / "nested" / "xray.png")]
    assert not Scan.objects.exists()
    assert not ScanUpload.objects.exists()
    assert not Prediction.objects.exists()


@pytest.mark.django_db
def test_json_lines(active_model, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    rows = [
        json.loads(line)
        for line in _run("--task", "diagnosis.pneumonia", "--json", str(folder)).splitlines()
    ]
    by_name = {Path(r["file"]).name: r for r in rows}
    assert by_name["ct.dcm"]["outcome"] == "out_of_scope"
    assert "modality CT" in by_name["ct.dcm"]["gate_problems"]
    assert by_name["report.png"]["ood_score"] > by_name["report.png"]["ood_threshold"]
    assert by_name["xray.png"]["outcome"] == "scored"
    assert set(by_name["xray.png"]["probabilities"]) == {"normal", "pneumonia"}
    assert all(r["model_version"] == str(active_model) for r in rows)


@pytest.mark.django_db
def test_missing_path_and_missing_model_are_clear_errors(db, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No such file or folder"):
        _run("--task", "diagnosis.pneumonia", str(tmp_path / "nope"))
    with pytest.raises(CommandError, match="No model version of diagnosis.pneumonia"):
        _run("--task", "diagnosis.pneumonia", str(tmp_path))
