"""diagnosis rows for tests, made directly (no files decoded, no model run): for pages and
permissions that need a scan or a prediction to exist. Tests of intake go through scan_upload."""

from __future__ import annotations

import factory

from diagnosis.models import Prediction, Scan, ScanUpload
from tests.platform.factories import ModelVersionFactory, PatientFactory, UserFactory


class ScanUploadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScanUpload

    patient = factory.SubFactory(PatientFactory)
    uploaded_by = factory.SubFactory(UserFactory)
    task = "t"


class ScanFactory(factory.django.DjangoModelFactory):
    """A 4 x 4 PNG scan in ``upload``'s batch (its patient and uploader); the stored file and
    display array are only named, not written."""

    class Meta:
        model = Scan

    upload = factory.SubFactory(ScanUploadFactory)
    patient = factory.SelfAttribute("upload.patient")
    uploaded_by = factory.SelfAttribute("upload.uploaded_by")
    kind = "png"
    file = factory.Sequence(lambda n: f"scans/{n}.png")
    display = factory.Sequence(lambda n: f"scans/display/{n}.npz")
    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    rows = 4
    cols = 4


class PredictionFactory(factory.django.DjangoModelFactory):
    """A two-class prediction ("a", "b") of class b at 0.6 on ``scan``."""

    class Meta:
        model = Prediction

    scan = factory.SubFactory(ScanFactory)
    model_version = factory.SubFactory(ModelVersionFactory)
    class_names = factory.LazyFunction(lambda: ["a", "b"])
    probabilities = factory.LazyFunction(lambda: {"a": 0.4, "b": 0.6})
    predicted_class = "b"
    predicted_index = 1
    risk = 0.6
    confidence = 0.6
    uncertainty = 0.9
