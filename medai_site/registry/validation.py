"""Validating a version on its task's locked held-out set: run the family's hook, compare with
the version in service, apply the pass rule. Long work, no database writes (the registry's
services store the result with the job's success).

The pass rule, shown on every result:
1. the metric is measured on the task's locked held-out set (a different set fails: versions
   are only ever compared on the same items);
2. its value clears the family's floor (e.g. AUROC above chance by a margin);
3. when another version is in service, the candidate is not significantly worse than it: the
   95 % bootstrap interval of (candidate - in service) does not lie wholly on the worse side of
   zero. Paired for held-out items; a generator's samples are its own, so unpaired.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medai_ml import comparison
from medai_ml.plain import to_plain
from medai_site.registry.catalogue import HeldOutOutputs, model_kind_of
from medai_site.registry.models import ModelHeldOut, ModelValidation, ModelVersion
from medai_site.registry.selectors import model_version_active

# Floors when a family states none: a model that cannot beat these is not decision support.
DEFAULT_FLOORS: dict[str, tuple[float, str]] = {
    "auroc": (0.6, "AUROC of at least 0.60 (0.50 is chance)"),
    "c_index": (0.55, "C-index of at least 0.55 (0.50 is chance)"),
    "validity": (0.5, "at least half of the samples valid molecules"),
}


class ValidationUnavailable(ValueError):
    """The version cannot be validated (no hook for its family, its artifact unreadable)."""


@dataclass
class ValidationResult:
    """Everything a validation stores; ``held_out`` is the locked set it matched (None when
    the task had none yet: the set this run used becomes the locked one)."""

    outputs: HeldOutOutputs
    metric: comparison.Metric
    estimate: comparison.Estimate
    floor: float | None
    floor_reason: str
    locked: ModelHeldOut | None
    same_set: bool
    compared_to: ModelVersion | None = None
    compared_value: float | None = None
    difference: comparison.Difference | None = None
    passed: bool = False
    verdict: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _outputs_of(version: ModelVersion, locked: ModelHeldOut | None) -> HeldOutOutputs:
    kind = model_kind_of(version.task)
    if kind is None or kind.validate is None:
        raise ValidationUnavailable(
            f"No app offers a held-out validation for {version.task}; it cannot be validated."
        )
    outputs = kind.validate(version, dict(locked.source) if locked is not None else None)
    if outputs.metric not in comparison.METRICS:
        raise ValidationUnavailable(f"Unknown held-out metric {outputs.metric!r}.")
    if outputs.paired and len(outputs.scores) != outputs.held_out.size:
        raise ValidationUnavailable(
            f"The hook scored {len(outputs.scores)} items of a {outputs.held_out.size}-item set."
        )
    return outputs


def _arrays(outputs: HeldOutOutputs) -> tuple[dict[str, np.ndarray], np.ndarray]:
    return {k: np.asarray(v) for k, v in outputs.targets.items()}, np.asarray(outputs.scores)


def _reference_outputs(
    reference: ModelVersion, held_out: ModelHeldOut | None, fresh: HeldOutOutputs
) -> HeldOutOutputs:
    """The version in service's outputs on the same set: its latest stored validation's
    outputs when they are for this very set, else scored now."""
    stored = (
        ModelValidation.objects.filter(
            version=reference,
            status__in=[ModelValidation.Status.PASSED, ModelValidation.Status.FAILED],
            held_out_ref__sha256=fresh.held_out.sha256,
        )
        .exclude(outputs={})
        .first()
    )
    if stored is not None and stored.outputs.get("metric") == fresh.metric:
        return HeldOutOutputs(
            held_out=fresh.held_out,
            metric=fresh.metric,
            targets=stored.outputs["targets"],
            scores=stored.outputs["scores"],
            paired=fresh.paired,
        )
    return _outputs_of(reference, held_out)


def validation_compute(*, version: ModelVersion) -> ValidationResult:
    """Score ``version`` on its task's locked held-out set (the first validation of a task
    fixes the set) and compare it with the version in service; no writes.
    ValidationUnavailable / ValueError with a plain message when it cannot be done."""
    started = time.perf_counter()
    locked = ModelHeldOut.objects.filter(task=version.task).first()
    outputs = _outputs_of(version, locked)
    metric = comparison.METRICS[outputs.metric]
    targets, scores = _arrays(outputs)
    estimate = comparison.estimate(metric, targets, scores)
    floor, floor_reason = outputs.floor, outputs.floor_reason
    if floor is None and outputs.metric in DEFAULT_FLOORS:
        floor, floor_reason = DEFAULT_FLOORS[outputs.metric]
    same_set = locked is None or locked.sha256 == outputs.held_out.sha256
    result = ValidationResult(
        outputs=outputs,
        metric=metric,
        estimate=estimate,
        floor=floor,
        floor_reason=floor_reason,
        locked=locked,
        same_set=same_set,
    )
    checks: list[bool] = []
    if not same_set:
        assert locked is not None
        result.verdict.append(
            f"Refused: this version was scored on {outputs.held_out.name} "
            f"({outputs.held_out.size} items, sha256 {outputs.held_out.sha256[:12]}), not on the "
            f"task's locked held-out set {locked.name} ({locked.size} items, sha256 "
            f"{locked.sha256[:12]}); versions are only compared on the same items."
        )
        checks.append(False)
    if not math.isfinite(estimate.value):
        result.verdict.append(f"{metric.label} could not be measured on this set.")
        checks.append(False)
    elif floor is not None:
        clears = estimate.value >= floor if metric.higher_is_better else estimate.value <= floor
        result.verdict.append(
            f"{metric.label} {estimate.value:.3f} {'meets' if clears else 'misses'} the floor: "
            f"{floor_reason or f'{floor:.3f}'}."
        )
        checks.append(clears)
    reference = model_version_active(task=version.task)
    if same_set and reference is not None and reference.pk != version.pk:
        ref_outputs = _reference_outputs(reference, locked, outputs)
        ref_targets, ref_scores = _arrays(ref_outputs)
        if outputs.paired:
            if ref_outputs.held_out.sha256 != outputs.held_out.sha256:
                raise ValueError(f"{reference} was scored on another set; no paired comparison.")
            difference = comparison.paired_difference(metric, targets, scores, ref_scores)
        else:
            difference = comparison.unpaired_difference(
                metric, (targets, scores), (ref_targets, ref_scores)
            )
        result.compared_to = reference
        result.compared_value = metric.fn(ref_targets, ref_scores)
        result.difference = difference
        fine = comparison.not_worse(difference, higher_is_better=metric.higher_is_better)
        how = "paired bootstrap" if difference.paired else "unpaired bootstrap over samples"
        result.verdict.append(
            f"Against v{reference.version} in service: difference {difference.value:+.3f} "
            f"(95 % CI {difference.low:+.3f} to {difference.high:+.3f}, {how}); "
            + ("not significantly worse." if fine else "significantly worse.")
        )
        checks.append(fine)
    elif same_set and reference is None:
        result.verdict.append("No version in service to compare with.")
    result.passed = bool(checks) and all(checks)
    result.seconds = time.perf_counter() - started
    return result


def validation_fields(result: ValidationResult) -> dict[str, Any]:
    """The ModelValidation fields of ``result`` (JSON-safe), bar the held-out row."""
    outputs, estimate, difference = result.outputs, result.estimate, result.difference
    held = outputs.held_out
    return {
        "status": ModelValidation.Status.PASSED if result.passed else ModelValidation.Status.FAILED,
        "held_out_ref": {"name": held.name, "size": held.size, "sha256": held.sha256},
        "metric": outputs.metric,
        "higher_is_better": result.metric.higher_is_better,
        "value": _finite(estimate.value),
        "ci_low": _finite(estimate.low),
        "ci_high": _finite(estimate.high),
        "floor": result.floor,
        "compared_to": result.compared_to,
        "compared_value": _finite(result.compared_value),
        "diff": _finite(difference.value) if difference else None,
        "diff_low": _finite(difference.low) if difference else None,
        "diff_high": _finite(difference.high) if difference else None,
        "paired": outputs.paired,
        "passed": result.passed,
        "verdict": " ".join(result.verdict),
        "run_seconds": round(result.seconds, 3),
        "outputs": to_plain(
            {"metric": outputs.metric, "targets": outputs.targets, "scores": outputs.scores}
        ),
        "details": to_plain(
            {
                "metric_label": result.metric.label,
                "extra": outputs.extra,
                "notes": list(outputs.notes),
                "floor_reason": result.floor_reason,
                "n_boot": difference.n_boot if difference else comparison.BOOTSTRAP_SAMPLES,
            }
        ),
    }


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
