"""Registering an imaging data set whose name another registration takes between the form's
check and the insert: a 400 with a message on the name, never an IntegrityError 500."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from django.urls import reverse

from diagnosis.models import ImageDataset
from tests.support.clients import login

pytestmark = pytest.mark.django_db


def _tiny_npz(path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 8), ("val", 4), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 8, 8), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.array([[i % 2] for i in range(n)], dtype=np.uint8)
    np.savez(path, **arrays)
    return path


def test_a_name_taken_while_the_path_is_checked_is_a_400(users, tmp_path, settings):
    import diagnosis.training as training

    settings.MEDAI_DATASET_ROOTS = [tmp_path]
    real = training.dataset_path_confine

    def racing(*args, **kwargs):
        # The competing registration commits between the form's check and the insert.
        ImageDataset.objects.create(
            name="chest", task="diagnosis.x", kind="npz", path="/elsewhere.npz"
        )
        return real(*args, **kwargs)

    path = _tiny_npz(tmp_path / "tiny.npz")
    with mock.patch.object(training, "dataset_path_confine", side_effect=racing):
        response = login(users.model_admin).post(
            reverse("diagnosis:dataset_create"),
            {"name": "chest", "task": "diagnosis.x", "kind": "npz", "path": str(path)},
        )
    assert response.status_code == 400
    assert "already registered" in response.content.decode()
    assert ImageDataset.objects.filter(name="chest").count() == 1
