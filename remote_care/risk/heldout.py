"""The deterioration model's validation hook: a version scored on the locked held-out stays,
the test part of the seeded stratified split of PhysioNet 2012 set A that training holds out
(``stratified_split`` with seed 2012 over every stay, as a training run without a stay limit
makes it); the first N of those stays by RecordID (N = MEDAI_HELDOUT_MAX_ITEMS when locked)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from medai_site.registry.catalogue import HeldOutOutputs, HeldOutSet
from remote_care.risk.training import SPLIT_SEED


def risk_validate(version: Any, source: dict[str, Any] | None) -> HeldOutOutputs:
    """Calibrated risks of ``version`` on the held-out ICU stays against in-hospital death
    (AUROC); ValueError when set A is not installed."""
    from medai_site.jobs.exceptions import JobError
    from remote_care.ml.model import predict
    from remote_care.ml.physionet import load_set_a, stratified_split
    from remote_care.risk.services import risk_model_from_bytes
    from remote_care.risk.tasks import physionet_paths

    seed = int((source or {}).get("split_seed", SPLIT_SEED))
    limit = int((source or {}).get("limit") or settings.MEDAI_HELDOUT_MAX_ITEMS)
    try:
        archive, outcomes = physionet_paths()
    except JobError as exc:
        raise ValueError(str(exc)) from None
    stays = [s for s in load_set_a(archive, outcomes, cache_dir=settings.MEDAI_CACHE_DIR)]
    split = stratified_split([s.death for s in stays], seed=seed)
    held = [stays[i] for i in split.test[:limit]]
    with version.artifact.open("rb") as handle:
        model = risk_model_from_bytes(handle.read())
    risks = predict(model, held)
    notes = []
    trained_limit = (version.params or {}).get("config", {}).get("limit_stays") or (
        version.training_data or {}
    ).get("n_stays")
    if trained_limit and int(trained_limit) < len(stays):
        notes.append(
            f"This version was trained on the first {trained_limit} stays only, split with its "
            "own seed: some held-out stays may have been in its training data."
        )
    return HeldOutOutputs(
        held_out=HeldOutSet(
            name=f"PhysioNet 2012 set A held-out stays (seed {seed})",
            item_ids=tuple(f"physionet2012a:{s.record_id}" for s in held),
            source={"split_seed": seed, "limit": limit},
        ),
        metric="auroc",
        targets={"labels": [int(s.death or 0) for s in held]},
        scores=[float(r) for r in risks],
        notes=tuple(notes),
    )
