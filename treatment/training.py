"""Training a treatment model, outside any transaction: evaluated on a held-out split of its
trial, refitted on every patient, as the registry records it. The training job and the shipped
demo model both train through here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medai_site.registry.shipped import TrainedModel


def headline_metrics(evaluation: dict[str, Any]) -> dict[str, Any]:
    """Registry metrics: held-out headline scalars first (they head the registry's cards),
    then the whole evaluation."""
    metrics = evaluation.get("metrics", {})
    policy = evaluation.get("policy", {})
    headline = {
        "harrell_c": metrics.get("c_index_harrell"),
        "uno_c": metrics.get("c_index_uno"),
        "ibs": metrics.get("integrated_brier_score"),
        **{f"policy_{name}": value.get("value") for name, value in policy.items()},
    }
    # Outcome models (binary/continuous) have no C-index: keep only what was measured.
    headline = {k: v for k, v in headline.items() if isinstance(v, (int, float))}
    return {**headline, "evaluation": evaluation}


def treatment_model_train(
    *, trial: str, settings: dict[str, Any], on_stage: Callable[[float, str], None]
) -> TrainedModel:
    """Evaluate ``settings`` (a ModelConfig's fields) on a held-out split of ``trial``, refit
    on every patient and return the refit as the registry stores it. KeyError, TypeError or
    ValueError on an unknown trial or bad settings."""
    from treatment.ml.evaluate import evaluate_trial
    from treatment.ml.models import ModelConfig, fit_treatment_model
    from treatment.ml.trials import get_trial, load_trial
    from treatment.services import task_name

    definition = get_trial(trial)
    config = ModelConfig(**settings)
    on_stage(5, f"Evaluating {config.kind} on a held-out split of {trial}")
    evaluation, _ = evaluate_trial(trial, config, seed=config.seed)
    on_stage(55, "Refitting on every patient of the trial")
    model = fit_treatment_model(load_trial(definition), config)
    evaluated = evaluation.to_dict()
    # The shipped model is the refit; its card reports the held-out scores of the split fit.
    model.metrics = {"held_out": evaluated["metrics"], "n_test": evaluated["n_test"]}
    c = evaluated["metrics"].get("c_index_harrell")
    return TrainedModel(
        task=task_name(trial),
        content=model.to_bytes(),
        params={"config": settings, "outcome": model.outcome},
        training_data={
            "trial": trial,
            "title": definition.title,
            "citation": definition.citation,
            "population": definition.population,
            "n": model.training.get("n"),
            "max_time": model.training.get("max_time"),
            "time_unit": model.time_unit,
        },
        metrics=headline_metrics(evaluated),
        finding=f"held-out Harrell C {c:.3f}" if isinstance(c, float) else "",
    )


#: The shipped demo treatment model (data/models/treatment-gbsg2/): a Cox model of GBSG2.
SHIPPED_SLUG = "treatment-gbsg2"
SHIPPED_TRIAL = "gbsg2"
SHIPPED_SETTINGS: dict[str, Any] = {"kind": "cox"}


def gbsg2_build(log: Any) -> TrainedModel:
    """The shipped GBSG2 model: the Cox model seed_demo used to queue, trained as a job does."""
    return treatment_model_train(
        trial=SHIPPED_TRIAL,
        settings=dict(SHIPPED_SETTINGS),
        on_stage=lambda percent, stage: log.update(percent, stage),
    )
