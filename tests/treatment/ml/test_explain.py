from __future__ import annotations

import json

import numpy as np
import pytest

from treatment.ml.effects import patient_effect
from treatment.ml.explain import explain_patient, model_facts, shapley_values
from treatment.ml.models import ModelConfig, fit_treatment_model
from treatment.ml.trials import load_trial

GROUPS = [np.array([0]), np.array([1]), np.array([2, 3])]


def _f(rows: np.ndarray) -> np.ndarray:
    # Known game: additive in x0 and the (x2, x3) group, plus an x0*x1 interaction.
    return 2 * rows[:, 0] + rows[:, 0] * rows[:, 1] + 3 * rows[:, 2] - rows[:, 3]


def test_shapley_values_of_a_known_function():
    x = np.array([1.0, 2.0, 1.0, 4.0])
    background = np.zeros((3, 4))
    phi, pred, base, used = shapley_values(_f, x, background, GROUPS)
    assert used is None  # exact
    # x0 gets 2 + half the interaction (1), x1 the other half, the group 3*1 - 4 = -1.
    np.testing.assert_allclose(phi, [3.0, 1.0, -1.0])
    assert pred == pytest.approx(3.0) and base == 0.0


def test_sampled_shapley_keeps_the_sum_and_is_seeded():
    rng = np.random.default_rng(0)
    x, background = rng.normal(size=4), rng.normal(size=(5, 4))
    exact, pred, base, _ = shapley_values(_f, x, background, GROUPS)
    a, *_ = shapley_values(_f, x, background, GROUPS, max_exact=0, n_orderings=200, seed=1)
    b, *_ = shapley_values(_f, x, background, GROUPS, max_exact=0, n_orderings=200, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.sum() == pytest.approx(pred - base, abs=1e-12)
    np.testing.assert_allclose(a, exact, atol=0.15)


def test_patient_explanation_sums_to_prediction_minus_baseline(gbsg2_cox, gbsg2_patient):
    exp = explain_patient(gbsg2_cox, gbsg2_patient)
    assert exp.n_orderings is None and exp.method.startswith("exact")
    assert exp.total == pytest.approx(exp.prediction - exp.baseline, abs=1e-10)
    eff = patient_effect(gbsg2_cox, gbsg2_patient)
    # It explains the recommendation: same arms, same predicted benefit.
    assert (exp.arm, exp.versus) == (eff.recommendation.arm, eff.recommendation.comparator)
    assert exp.prediction == pytest.approx(eff.recommendation.benefit, abs=1e-12)
    assert {c.covariate for c in exp.contributions} == {
        "age",
        "menostat",
        "tsize",
        "tgrade",
        "pnodes",
        "progrec",
        "estrec",
    }
    sizes = [abs(c.contribution) for c in exp.contributions]
    assert sizes == sorted(sizes, reverse=True)
    json.dumps(exp.to_dict())


def test_a_patient_like_the_background_has_little_to_explain(gbsg2_cox, gbsg2):
    # Covariates that equal every background row's value cannot push the benefit.
    model = gbsg2_cox
    row = gbsg2.raw.iloc[3].to_dict()
    exp = explain_patient(model, row, arm=1, versus=0, n_background=1)
    bg = model.background[0]
    names = list(model.feature_names)
    equal = {
        c
        for c in model.definition.covariates
        if all(bg[names.index(col)] == gbsg2.X.iloc[3][col] for col in c.encoded_columns())
    }
    assert {c.name for c in equal} == {"menostat", "tgrade"}  # the test is not vacuous
    for contribution in exp.contributions:
        if any(c.name == contribution.covariate for c in equal):
            assert contribution.contribution == pytest.approx(0.0, abs=1e-12)


def test_many_covariates_use_seeded_orderings_and_keep_the_sum():
    data = load_trial("actg175")
    model = fit_treatment_model(data, ModelConfig(kind="cox", n_bootstrap=0))
    patient = data.raw.iloc[10].to_dict()
    a = explain_patient(model, patient, n_orderings=16)
    b = explain_patient(model, patient, n_orderings=16)
    assert a.n_orderings == 16 and len(a.contributions) == 15
    assert a.to_dict() == b.to_dict()
    assert a.total == pytest.approx(a.prediction - a.baseline, abs=1e-10)
    with pytest.raises(ValueError, match="two different arm"):
        explain_patient(model, patient, arm=2, versus=2)


def test_model_facts(gbsg2_cox, gbsg2):
    facts = model_facts(gbsg2_cox)
    json.dumps(facts)
    assert facts["training_data"]["n"] == 686 and facts["training_data"]["events"] == 299
    ages = facts["covariate_ranges_seen"]["age"]
    assert (ages["min"], ages["max"]) == (gbsg2.raw.age.min(), gbsg2.raw.age.max())
    assert facts["covariate_ranges_seen"]["tgrade"] == {"II": 444, "III": 161, "I": 81}
    assert facts["model"]["n_bootstrap"] == 30
    assert any("proportional hazards" in limit for limit in facts["known_limits"])
    assert facts["trial"]["population"].startswith("Women with primary node-positive")
