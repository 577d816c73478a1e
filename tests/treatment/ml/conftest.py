"""Shared, session-scoped fits on the real GBSG2 trial (Cox models fit in about a second)."""

from __future__ import annotations

import numpy as np
import pytest

from treatment.ml.models import ModelConfig, TreatmentModel, fit_treatment_model
from treatment.ml.trials import TrialData, load_trial


@pytest.fixture(scope="session")
def gbsg2() -> TrialData:
    return load_trial("gbsg2")


@pytest.fixture(scope="session")
def gbsg2_cox(gbsg2) -> TreatmentModel:
    """Cox with interactions and 30 bootstrap refits on all 686 patients."""
    return fit_treatment_model(gbsg2, ModelConfig(kind="cox", n_bootstrap=30, seed=0))


@pytest.fixture(scope="session")
def gbsg2_patient(gbsg2) -> dict:
    return gbsg2.raw.iloc[0].to_dict()


@pytest.fixture(scope="session")
def shuffled_cox(gbsg2) -> TreatmentModel:
    """Same model, but trained with the treatment labels randomly permuted: no true effect."""
    shuffled = load_trial("gbsg2")
    shuffled.arm = np.random.default_rng(12345).permutation(shuffled.arm)
    return fit_treatment_model(shuffled, ModelConfig(kind="cox", n_bootstrap=30, seed=0))
