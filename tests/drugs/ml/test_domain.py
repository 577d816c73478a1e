"""Applicability domain of the property predictors: threshold rule and verdicts."""

from __future__ import annotations

import numpy as np

from drugs.ml.domain import choose_threshold, describe, domain_text


def test_threshold_is_where_the_cross_validated_error_stops_being_markedly_worse() -> None:
    rng = np.random.default_rng(0)
    similarity = rng.uniform(0, 1, 4000)
    # Error 0.5 below similarity 0.4, 0.1 above: the threshold must land at 0.4.
    error = np.where(similarity < 0.4, 0.5, 0.1) + rng.normal(0, 0.01, 4000)
    fitted = choose_threshold(similarity, error)
    assert fitted["threshold"] == 0.4
    assert abs(fitted["cv_outside_rate"] - 0.4) < 0.03
    assert all(b["n"] >= 20 for b in fitted["bins"])


def test_flat_error_puts_every_cross_validated_molecule_inside() -> None:
    rng = np.random.default_rng(1)
    similarity = rng.uniform(0.2, 1, 1000)
    fitted = choose_threshold(similarity, np.full(1000, 0.2))
    assert fitted["threshold"] == round(similarity.min(), 4) and fitted["cv_outside_rate"] == 0


def test_verdict_sentences() -> None:
    assert describe(0.231, 0.35)["text"] == (
        "outside the applicability domain (max similarity 0.23 < 0.35)"
    )
    assert describe(0.6, 0.35)["status"] == "inside"
    assert describe(None, 0.35)["status"] == "unknown"
    assert domain_text(None) == "applicability domain unknown"
