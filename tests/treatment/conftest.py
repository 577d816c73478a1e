"""Treatment fixtures: a small real Cox model on GBSG2 (fit once per session, about a second)
registered and activated as treatment.gbsg2 for each test that needs one."""

from __future__ import annotations

import pytest

TASK = "treatment.gbsg2"


@pytest.fixture(scope="session")
def gbsg2_artifact() -> bytes:
    from treatment.ml.models import ModelConfig, fit_treatment_model
    from treatment.ml.trials import load_trial

    model = fit_treatment_model(load_trial("gbsg2"), ModelConfig(kind="cox", n_bootstrap=8))
    return model.to_bytes()


@pytest.fixture(scope="session")
def gbsg2_facts() -> dict:
    """The first GBSG2 patient's covariates as a demo patient record carries them."""
    from treatment.ml.trials import load_trial, to_plain

    row = load_trial("gbsg2").raw.iloc[0].to_dict()
    return {"dataset": "GBSG2", "horTh": "no", **to_plain(row)}


@pytest.fixture
def active_treatment(db, users, gbsg2_artifact):
    from medai_site.registry.loader import clear_model_cache
    from medai_site.registry.services import model_version_register
    from tests.support.governance import activate_version

    version = model_version_register(
        task=TASK,
        artifact=gbsg2_artifact,
        created_by=users.model_admin,
        metrics={"harrell_c": 0.68, "uno_c": 0.66, "ibs": 0.18},
    )
    activate_version(version, users.model_admin)
    clear_model_cache()
    yield version
    clear_model_cache()
