"""Training the deterioration model, outside any transaction: the recurrent model on PhysioNet
2012 set A (seeded 60/20/20 split), compared with the baselines on the same held-out stays, as
the registry records it. The training job and the shipped demo model both train through here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from medai_site.registry.shipped import TrainedModel
from remote_care.risk.services import RISK_TASK, risk_model_to_bytes

#: The seeded split of set A every deterioration model trains on; its test part is the
#: task's held-out set (remote_care.risk.heldout).
SPLIT_SEED = 2012


def _flagged_share(model: Any, stays: list[Any]) -> float | None:
    """Share of PhysioNet stays the model's input contract would answer 'insufficient data'."""
    from remote_care.ml.applicability import check_inputs

    if not stays:
        return None
    flagged = sum(not check_inputs(s, model.input_contract)["sufficient"] for s in stays)
    return round(flagged / len(stays), 4)


def risk_model_train(
    *,
    archive: Path,
    outcomes: Path,
    cache_dir: Path,
    config: Any,
    on_stage: Callable[[float, str], None],
    on_epoch: Callable[[Any, dict[str, list]], None] | None = None,
    limit_stays: int | None = None,
    split_seed: int = SPLIT_SEED,
) -> TrainedModel:
    """Train ``config`` (remote_care.ml.train.TrainConfig) on set A's training stays, compare
    it with the baselines on the held-out stays and return the version as the registry stores
    it. ``on_epoch(report, curves)`` sees the validation AUROC curve of every member so far."""
    from remote_care.ml.physionet import load_set_a, stratified_split
    from remote_care.ml.report import compare_on_test
    from remote_care.ml.train import EpochReport, train_risk_model

    on_stage(2, "Reading PhysioNet 2012 set A")
    stays = load_set_a(archive, outcomes, cache_dir=cache_dir)
    if limit_stays:
        stays = stays[: int(limit_stays)]
    split = stratified_split([s.death for s in stays], seed=split_seed)
    train = [stays[i] for i in split.train]
    val = [stays[i] for i in split.val]
    curves: dict[str, list] = {"epoch": [], "val_auroc": [], "member": []}

    def epoch_done(report: EpochReport) -> None:
        curves["epoch"].append(len(curves["epoch"]) + 1)
        curves["val_auroc"].append(round(report.val_auroc, 4))
        curves["member"].append(report.member + 1)
        if on_epoch is not None:
            on_epoch(report, curves)

    model = train_risk_model(train, val, config, on_epoch=epoch_done)
    on_stage(82, "Comparing with the baselines on the held-out stays")
    name = f"GRU ({config.spec} inputs)"
    comparison = compare_on_test(
        stays, split, {name: (model, config.spec == "vitals")}, n_boot=200
    ).to_dict()
    ours = next(r for r in comparison["reports"] if r["name"] == name)
    model.metrics.update({"test_auroc": ours["auroc"], "test_auprc": ours["auprc"]})
    return TrainedModel(
        task=RISK_TASK,
        content=risk_model_to_bytes(model),
        params={"config": config.to_dict(), "inputs": config.spec},
        training_data={
            "dataset": "PhysioNet/CinC Challenge 2012, set A",
            "citation": "Silva et al., Computing in Cardiology 2012 (ODC-BY 1.0)",
            "population": "ICU stays of at least 48 h (Beth Israel Deaconess, MIMIC-II)",
            "outcome": "in-hospital death",
            "n_stays": len(stays),
            "split": comparison["split"],
        },
        metrics={
            "auroc": ours["auroc"],
            "auprc": ours["auprc"],
            "brier": ours["brier"],
            "ece": ours["ece"],
            "val_auroc": model.metrics.get("val_auroc"),
            "train_seconds": model.metrics.get("train_seconds"),
            "alert_thresholds": model.metrics.get("alert_thresholds"),
            "input_contract": {
                **(model.input_contract or {}),
                # How often the contract refuses the training population itself (whole
                # 48-h ICU stays): its false "insufficient data" rate.
                "flagged_share_of_stays": _flagged_share(model, stays),
            },
            "comparison": comparison,
            "curves": curves,
        },
        finding=f"held-out AUROC {ours['auroc']:.3f}",
    )


#: The shipped demo deterioration model (data/models/remote-care-deterioration/): the vitals-input
#: GRU ensemble seed_demo used to queue (3 members, at most 40 epochs).
SHIPPED_SLUG = "remote-care-deterioration"
SHIPPED_CONFIG: dict[str, Any] = {"spec": "vitals", "members": 3, "max_epochs": 40}


def deterioration_build(log: Any) -> TrainedModel:
    """The shipped deterioration model, trained on set A as a training job does (one thread)."""
    from django.conf import settings

    from remote_care.ml.train import TrainConfig

    folder = Path(settings.MEDAI_PHYSIONET2012_DIR)
    config = TrainConfig(
        spec=SHIPPED_CONFIG["spec"],
        seeds=tuple(range(SHIPPED_CONFIG["members"])),
        max_epochs=SHIPPED_CONFIG["max_epochs"],
        threads=1,
    )

    def on_epoch(report: Any, curves: dict[str, list]) -> None:
        log.write(
            f"member {report.member + 1}/{report.n_members}, epoch {report.epoch}: "
            f"validation AUROC {report.val_auroc:.4f}"
        )

    return risk_model_train(
        archive=folder / "set-a.tar.gz",
        outcomes=folder / "Outcomes-a.txt",
        cache_dir=Path(settings.MEDAI_CACHE_DIR),
        config=config,
        on_stage=lambda percent, stage: log.update(percent, stage),
        on_epoch=on_epoch,
    )
