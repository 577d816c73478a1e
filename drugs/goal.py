"""A design run's goal-directed comparison (GuacaMol-style), computed by its worker after the
sample is scored: the run's top-100 on its own objective against (a) the best 100 of a seeded
sample of the MOSES training set and (b) the generator it started from, sampled without
optimisation. The scoring and the comparison are drugs.ml.goal; this module picks the
objective, the predictor, the baselines and the cache folder, and shapes the stored result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings

from drugs import sources
from drugs.artifacts import activity_predictor
from drugs.design import Generated
from drugs.models import DesignRun
from medai_site.jobs.runtime import Progress

#: The reason a run's section shows instead of a table.
NO_OBJECTIVE = "no_objective"
SAMPLE_RUN = "sample_run"


def _baseline_source() -> tuple[Path, str]:
    """The MOSES training set the baseline samples: the full 1.58M set when the molsets
    wheel is installed, else the shipped 10k subset; and how the page names it."""
    full = sources.moses_train_full()
    if full is not None:
        return full, "MOSES train (1.58M)"
    return sources.moses_train_10k(), "MOSES train (10k subset)"


def _row(stats: Any, **facts: Any) -> dict[str, Any]:
    return {
        "n_scored": stats.n_scored,
        "top_k_mean": round(stats.top_k_mean, 4),
        "top_10_mean": round(stats.top_10_mean, 4),
        "top_1": round(stats.top_1, 4),
        "intdiv": None if stats.intdiv is None else round(stats.intdiv, 4),
        "best": [list(b) for b in stats.best],
        **facts,
    }


def design_goal_compare(
    *,
    run: DesignRun,
    generated: Generated,
    run_smiles: list[str],
    seed: int,
    progress: Progress,
) -> dict[str, Any]:
    """The run's goal-directed comparison as stored in ``result["goal"]``: the objective, the
    three rows and whether the run beats each baseline; ``{"status": ...}`` alone for a run
    with no objective beyond realism (or a sample run, which optimises nothing)."""
    from drugs.ml.chem import canonical_smiles
    from drugs.ml.datasets import load_smiles_file
    from drugs.ml.gan import GanConfig
    from drugs.ml.goal import (
        TOP_K,
        GoalScorer,
        KnownScores,
        baseline_cache_key,
        objective_weights,
        scored_baseline,
        seeded_sample,
        top_k_comparison,
    )
    from medai_site.core.compute import torch_device

    if run.kind == DesignRun.Kind.SAMPLE:
        return {"status": SAMPLE_RUN}
    weights = GanConfig.from_dict(run.config.get("gan", {})).reward_weights()
    if not objective_weights(weights):
        return {"status": NO_OBJECTIVE}
    started = time.monotonic()
    endpoint = run.config.get("activity_endpoint", "") if weights["activity"] > 0 else ""
    predictor = activity_predictor(endpoint)
    scorer = GoalScorer(weights, predictor[1] if predictor else None)
    path, source = _baseline_source()
    size, baseline_seed = settings.DRUGS_GOAL_BASELINE_SAMPLE, settings.DRUGS_GOAL_BASELINE_SEED
    key = baseline_cache_key(
        weights=weights,
        predictor=f"{predictor[0].task}:{predictor[0].sha256}" if predictor else "",
        source=f"{path.name}:{path.stat().st_size}",
        size=size,
        seed=baseline_seed,
    )
    progress.update(
        96,
        f"Scoring {size:,} molecules of {source} with the run's objective "
        "(once per objective, then cached)",
        force=True,
    )
    baseline = scored_baseline(
        key=key,
        cache_dir=Path(settings.MEDAI_CACHE_DIR) / "drugs-goal",
        load=lambda: seeded_sample(load_smiles_file(path), size, baseline_seed),
        score_fn=scorer,
    )
    baselines = {"train": list(baseline.scores)}
    if generated.prior is not None:
        progress.update(98, f"Sampling {run.n_samples:,} molecules from the prior", force=True)
        raw = generated.prior.sample(
            run.n_samples,
            temperature=generated.temperature,
            seed=seed,
            device=str(torch_device()),
        )
        baselines["prior"] = [c for c in (canonical_smiles(s) for s in raw) if c]
    compared = top_k_comparison(
        run_smiles=run_smiles,
        baselines=baselines,
        score_fn=KnownScores(scorer, baseline.scores),
        k=TOP_K,
    )
    rows = {
        "run": _row(compared.run, sampled=run.n_samples),
        "train": _row(
            compared.baselines["train"],
            sampled=baseline.n_sampled,
            source=source,
            seed=baseline_seed,
            cached=baseline.cached,
        ),
    }
    if "prior" in compared.baselines:
        rows["prior"] = _row(
            compared.baselines["prior"], sampled=run.n_samples, generator=generated.prior_label
        )
    return {
        "status": "done",
        "k": compared.k,
        "objective": scorer.weights,
        "activity_endpoint": endpoint,
        "predictor": str(predictor[0]) if predictor else "",
        "temperature": generated.temperature,
        "seed": seed,
        "rows": rows,
        "beats": compared.beats,
        "seconds": round(time.monotonic() - started, 1),
    }
