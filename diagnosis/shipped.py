"""The shipped pre-trained pneumonia classifier (data/models/diagnosis-pneumonia/): built from
the demo data set by the same training code as a training job, with the product's default
recipe (fewer epochs), so the demo classifies scans from the first start."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings

from diagnosis.selectors import SHIPPED_TASK
from medai_site.registry.shipped import BuildLog, TrainedModel

SLUG = "diagnosis-pneumonia"
DEMO_DATASET = "PneumoniaMNIST"
DEMO_CLASSES = ["normal", "pneumonia"]
#: The product's default recipe, shortened to 10 epochs (its one-cycle schedule spans them) so
#: the model builds in minutes on one shared CPU core; validation AUC is ~.99 by epoch 3.
SHIPPED_CONFIG = {"epochs": 10}


def demo_dataset_path() -> Path:
    """The PneumoniaMNIST file shipped in data/ (the demo data set)."""
    return Path(settings.BASE_DIR) / "data" / "medmnist" / "pneumoniamnist.npz"


def pneumonia_build(log: BuildLog) -> TrainedModel:
    """Train the product's default classifier on the shipped PneumoniaMNIST file, as a
    training job on the demo data set does (its input contract from the data set's default)."""
    from diagnosis.imaging.contract import contract_declare, contract_for_training
    from diagnosis.ml.data import load_npz
    from diagnosis.ml.train import TrainConfig
    from diagnosis.training import classifier_train

    path = demo_dataset_path()
    log.write(f"Loading {path.relative_to(settings.BASE_DIR)}")
    data = load_npz(path, class_names=DEMO_CLASSES)
    contract = contract_for_training(
        contract_declare({}, names=[DEMO_DATASET, str(path.resolve())]),
        source=str(path.resolve()),
        channels=data.channels,
        image_size=data.image_size,
    )
    config = TrainConfig.from_dict(SHIPPED_CONFIG)

    def on_epoch(report: object) -> None:
        line = report.to_dict()  # type: ignore[attr-defined]
        log.write(
            "epoch "
            + ", ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in line.items()
            )
        )

    content, metrics, result = classifier_train(
        data=data, config=config, contract=contract, on_epoch=on_epoch, on_stage=log.write
    )
    test = result.test.to_dict()
    return TrainedModel(
        task=SHIPPED_TASK,
        content=content,
        params=config.to_dict(),
        training_data={
            "dataset": DEMO_DATASET,
            "kind": "npz",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "splits": {s: int(len(data.split(s)[1])) for s in ("train", "val", "test")},
            "classes": list(data.class_names),
        },
        metrics=metrics,
        finding=f"test AUC {test.get('auc', float('nan')):.3f}, "
        f"accuracy {test.get('accuracy', float('nan')):.3f}",
    )
