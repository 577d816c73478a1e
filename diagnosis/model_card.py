"""What an imaging model version's card says: the input contract it was trained on and its
out-of-distribution detector with the rates measured at training time, in plain words.

Read from the version's metrics (metrics["contract"], metrics["ood"]), which training and
`import_model_version` record from the artifact; the registry's admin and the monitoring page
show the same sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diagnosis.imaging.contract import contract_rows, contract_summary
from medai_site.registry.catalogue import CardSection

# The detector's components (diagnosis.ml.ood.COMPONENTS) in a reader's words.
METHOD_WORDS: dict[str, str] = {
    "maha": "Mahalanobis distance to the nearest class on the last layer's features",
    "maha-layers": "Mahalanobis distance to the nearest class on every convolutional stage",
    "knn": "distance to the nearest training images (k-nearest neighbours)",
    "energy": "energy score of the outputs",
    "corruption": "a check trained to tell upright, whole films from turned, cropped, "
    "inverted or washed-out copies of them",
    "pixels": "the image's own contrast and fine texture against the training images'",
}
SYNTHETIC_WORDS: dict[str, str] = {
    "noise": "random noise",
    "blank": "blank frames",
    "inverted": "inverted contrast",
    "rotated": "rotated films",
    "cropped": "one corner enlarged",
    "text-screenshot": "screenshots of text",
}


def imaging_version_card(version: Any) -> list[CardSection]:
    """The contract and detector sections of `version`'s card (a ModelVersion)."""
    metrics = version.metrics or {}
    return [contract_section(metrics.get("contract")), detector_section(metrics.get("ood"))]


def contract_section(contract: Mapping[str, Any] | None) -> CardSection:
    """What the version reads: summary and each attribute, or that none was recorded."""
    if not contract:
        return CardSection(
            key="contract",
            title="What it reads (input contract)",
            summary="No input contract was recorded for this version: scans are not checked "
            "against what it was trained on before it scores them.",
        )
    return CardSection(
        key="contract",
        title="What it reads (input contract)",
        summary=f"Reads {contract_summary(contract)}. A scan whose header states anything "
        "else is not scored; the reason is shown instead.",
        rows=tuple(contract_rows(contract)),
    )


def detector_section(ood: Mapping[str, Any] | None) -> CardSection:
    """The detector: method, threshold, quantile and the measured rates, or that there is
    none."""
    title = "Out-of-scope detector"
    if not ood:
        return CardSection(
            key="detector",
            title=title,
            summary="This version has no out-of-distribution detector: its answers are marked "
            "'scope not checked' and images unlike its training data are scored like any other.",
        )
    quantile = float(ood.get("quantile", 0.0))
    method = str(ood.get("method", ""))
    parts = [METHOD_WORDS.get(p.strip(), p.strip()) for p in method.split("+") if p.strip()]
    rows: list[tuple[str, str]] = [
        ("method", f"{'; '.join(parts)} ({method}); the largest standardised score counts"),
        ("threshold", f"{float(ood.get('threshold', 0.0)):.3f}"),
        ("quantile", f"{_ordinal(quantile * 100)} percentile of validation images' scores"),
    ]
    if "val_flag_rate" in ood:
        rows.append(("false flags, validation", _pct(ood["val_flag_rate"])))
    if "test_flag_rate" in ood:
        count = ood.get("test_images")
        of = f" of {count} test images" if count else ""
        rows.append(("false flags, test (in distribution)", _pct(ood["test_flag_rate"]) + of))
    for name, rate in (ood.get("synthetic") or {}).items():
        rows.append(
            (
                f"detected: {SYNTHETIC_WORDS.get(name, name)}",
                f"{_pct(rate.get('rate', 0.0))} ({rate.get('flagged')} of {rate.get('images')})",
            )
        )
    summary = (
        f"Images whose learned score is above {float(ood.get('threshold', 0.0)):.2f} are "
        "outside this model's scope and get a reason, not a probability."
    )
    if "test_flag_rate" in ood:
        summary += f" It flagged {_pct(ood['test_flag_rate'])} of the in-distribution test images."
    return CardSection(key="detector", title=title, summary=summary, rows=tuple(rows))


def imaging_artifact_facts(bundle: Any) -> dict[str, Any]:
    """The metrics an imported artifact carries about its applicability: its input contract
    and its detector's summary (absent keys when the artifact has neither)."""
    facts: dict[str, Any] = {}
    if getattr(bundle, "contract", None):
        facts["contract"] = dict(bundle.contract)
    if getattr(bundle, "ood", None) is not None:
        facts["ood"] = bundle.ood.summary()
    return facts


def _pct(value: Any) -> str:
    return f"{float(value) * 100:.1f} %"


def _ordinal(value: float) -> str:
    number = f"{value:g}"
    if "." in number:
        return number
    n = int(number)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
