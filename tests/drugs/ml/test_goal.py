"""The goal-directed comparison: the objective score is the trainer's reward without realism,
the top-k comparison on a hand-made set, and the scored baseline cached per objective."""

from __future__ import annotations

import numpy as np
import pytest

from drugs.ml.gan import GanConfig, RewardModel
from drugs.ml.goal import (
    GoalScorer,
    KnownScores,
    baseline_cache_key,
    objective_weights,
    scored_baseline,
    seeded_sample,
    top_k_comparison,
)

MOLECULES = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "CN1CCC[C@H]1c1cccnc1",
    "c1ccc2ccccc2c1",
    "CCO",
    "O=C(O)c1ccccc1O",
    "Cc1ccc(S(=O)(=O)N)cc1",
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "O=c1[nH]c(=O)c2[nH]cnc2[nH]1",
]


def _activity(smiles: list[str]) -> np.ndarray:
    # Out of range and missing predictions are clipped / zeroed exactly as the trainer does.
    values = [1.7, -0.2, np.nan, 0.3, 0.8, 0.5, 0.1, 0.9]
    return np.array([values[MOLECULES.index(s)] for s in smiles])


@pytest.mark.parametrize(
    "weights",
    [
        {"w_qed": 0.5, "w_sa": 0.25},
        {"w_qed": 1.0},
        {"w_sa": 0.3, "w_lipinski": 0.2, "w_pains": 0.4, "w_activity": 0.7},
    ],
)
def test_objective_score_is_the_trainers_reward_without_realism(weights):
    """Same numbers as the GAN's RewardModel on the same molecules: with no realism weight
    exactly, and with one, the reward at realism 0 rescaled by the total weight."""
    activity = _activity if "w_activity" in weights else None
    scorer = GoalScorer(GanConfig(w_realism=0.0, **weights).reward_weights(), activity)
    scores = scorer(list(MOLECULES))
    bare = RewardModel(GanConfig(w_realism=0.0, **weights), activity)
    assert scores == pytest.approx(bare(list(MOLECULES), np.zeros(len(MOLECULES))), abs=1e-12)
    config = GanConfig(w_realism=1.0, **weights)
    with_realism = RewardModel(config, activity)(list(MOLECULES), np.zeros(len(MOLECULES)))
    total = sum(w for w in config.reward_weights().values() if w > 0)
    assert scores == pytest.approx(with_realism * total / scorer.total, abs=1e-12)
    assert np.all((scores >= 0) & (scores <= 1))


def test_objective_leaves_out_realism_and_marks_invalid_molecules():
    weights = GanConfig(w_realism=1.0, w_qed=0.5, w_sa=0.25).reward_weights()
    assert objective_weights(weights) == {"qed": 0.5, "sa": 0.25}
    scores = GoalScorer(weights)(["CCO", "C1CC(", ""])
    assert 0 < scores[0] < 1 and np.isnan(scores[1]) and np.isnan(scores[2])
    with pytest.raises(ValueError, match="no positive weight"):
        GoalScorer(GanConfig().reward_weights())  # realism only
    with pytest.raises(ValueError, match="activity model"):
        GoalScorer({"activity": 1.0})


def _table_scores(table: dict[str, float]):
    def score(smiles: list[str]) -> np.ndarray:
        return np.array([table.get(s, np.nan) for s in smiles])

    return score


def test_top_k_comparison_on_a_hand_made_set():
    # Scores chosen by hand: the run's five best are MOLECULES[:5].
    table = {s: v for s, v in zip(MOLECULES, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])}
    run = [*MOLECULES, MOLECULES[0], "not a molecule"]  # a duplicate and an invalid string
    compared = top_k_comparison(
        run_smiles=run,
        baselines={
            "weaker": MOLECULES[2:],  # top-5 mean 0.5
            "equal": MOLECULES[:5],  # the same top 5: not strictly beaten
            "short": MOLECULES[:2],  # two molecules: the missing three count as 0
        },
        score_fn=_table_scores(table),
        k=5,
    )
    ours = compared.run
    assert ours.n_scored == len(MOLECULES)
    assert ours.top_k_mean == pytest.approx((0.9 + 0.8 + 0.7 + 0.6 + 0.5) / 5)
    assert ours.top_10_mean == pytest.approx(ours.top_k_mean)  # k < 10: the top k
    assert ours.top_1 == pytest.approx(0.9)
    assert ours.best[0] == (MOLECULES[0], 0.9)
    assert 0 < ours.intdiv < 1
    assert compared.baselines["weaker"].top_k_mean == pytest.approx(0.5)
    assert compared.baselines["short"].top_k_mean == pytest.approx((0.9 + 0.8) / 5)
    assert compared.baselines["short"].n_scored == 2
    assert compared.beats == {"weaker": True, "equal": False, "short": True}

    wide = top_k_comparison(run_smiles=MOLECULES, baselines={}, score_fn=_table_scores(table))
    assert wide.k == 100
    assert wide.run.top_k_mean == pytest.approx(sum(table.values()) / 100)
    assert wide.run.top_10_mean == pytest.approx(sum(table.values()) / 10)


def test_known_scores_are_not_scored_again():
    seen: list[str] = []

    def scorer(smiles: list[str]) -> np.ndarray:
        seen.extend(smiles)
        return np.full(len(smiles), 0.25)

    score = KnownScores(scorer, {"CCO": 0.5})
    assert list(score(["CCO", "CCN"])) == [0.5, 0.25]
    assert seen == ["CCN"]


def test_the_scored_baseline_is_cached_per_objective(tmp_path):
    """A second call with the same objective, predictor, source, size and seed reads the file
    back: the scorer is not called and the sample not loaded again."""
    loads: list[int] = []

    def load() -> list[str]:
        loads.append(1)
        return seeded_sample([*MOLECULES, "C1CC("], 6, seed=3)

    scorer = GoalScorer({"qed": 0.5, "sa": 0.25})
    key = baseline_cache_key(
        weights={"qed": 0.5, "sa": 0.25, "realism": 1.0},
        predictor="",
        source="train.csv.gz",
        size=6,
        seed=3,
    )
    first = scored_baseline(key=key, cache_dir=tmp_path, load=load, score_fn=scorer)
    assert not first.cached and first.n_sampled == 6 and scorer.calls == 1
    again = scored_baseline(key=key, cache_dir=tmp_path, load=load, score_fn=scorer)
    assert again.cached and again.scores == first.scores and again.n_sampled == 6
    assert scorer.calls == 1 and len(loads) == 1
    # The same objective scaled, and a predictor that no term uses, share the cache ...
    assert key == baseline_cache_key(
        weights={"qed": 1.0, "sa": 0.5}, predictor="x", source="train.csv.gz", size=6, seed=3
    )
    # ... another objective, size or seed does not.
    for change in ({"weights": {"qed": 1.0}}, {"size": 7}, {"seed": 4}):
        parts = {
            "weights": {"qed": 0.5, "sa": 0.25},
            "predictor": "",
            "source": "train.csv.gz",
            "size": 6,
            "seed": 3,
            **change,
        }
        assert baseline_cache_key(**parts) != key
    activity = {"activity": 1.0}
    assert baseline_cache_key(
        weights=activity, predictor="v1", source="s", size=6, seed=3
    ) != baseline_cache_key(weights=activity, predictor="v2", source="s", size=6, seed=3)
    # A damaged file is scored again.
    next(tmp_path.glob("goal-baseline-*.json.gz")).write_bytes(b"not gzip")
    redone = scored_baseline(key=key, cache_dir=tmp_path, load=load, score_fn=scorer)
    assert not redone.cached and redone.scores == first.scores and scorer.calls == 2


def test_seeded_sample_is_reproducible():
    pool = [f"C{'C' * i}O" for i in range(50)]
    assert seeded_sample(pool, 10, 0) == seeded_sample(pool, 10, 0)
    assert seeded_sample(pool, 10, 0) != seeded_sample(pool, 10, 1)
    assert seeded_sample(pool[:5], 10, 0) == pool[:5]
