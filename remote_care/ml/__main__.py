"""Command line for the remote-care models.

    python -m remote_care.ml train-physionet --data DIR --out var/risk-all.pt --spec all
    python -m remote_care.ml evaluate --data DIR --artifact var/risk-all.pt \
        --artifact var/risk-vitals.pt [--json var/comparison.json]
    python -m remote_care.ml crossval --data DIR --spec all [--folds 5] [--json var/cv.json]
    python -m remote_care.ml progression

DIR holds ``set-a.tar.gz`` and ``Outcomes-a.txt`` (PhysioNet/CinC 2012 set A).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from remote_care.ml.evaluate import auroc
from remote_care.ml.model import load_artifact, save_artifact
from remote_care.ml.physionet import load_set_a, stratified_split
from remote_care.ml.train import EpochReport, TrainConfig, train_risk_model

# The shared data folder sits beside the repository unless $MEDAI_SHARED_DIR says otherwise.
DEFAULT_DATA = (
    Path(os.environ.get("MEDAI_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
    / "datasets"
    / "physio"
    / "physionet2012"
)


def _load(args: argparse.Namespace) -> tuple[list, object]:
    stays = load_set_a(
        args.data / "set-a.tar.gz", args.data / "Outcomes-a.txt", cache_dir=args.cache
    )
    split = stratified_split([s.death for s in stays], seed=args.split_seed)
    return stays, split


def _train(args: argparse.Namespace) -> int:
    stays, split = _load(args)
    cfg = TrainConfig(
        spec=args.spec,
        seeds=tuple(range(args.seeds)),
        threads=args.threads,
        max_epochs=args.max_epochs,
        channel_dropout=args.channel_dropout,
        severity_weight=args.severity_weight,
    )

    def progress(r: EpochReport) -> None:
        sys.stdout.write(
            f"member {r.member + 1}/{r.n_members} epoch {r.epoch + 1}: loss {r.train_loss:.4f} "
            f"val AUROC {r.val_auroc:.4f} (best {r.best_val_auroc:.4f}) {r.elapsed_s:.0f}s\n"
        )
        sys.stdout.flush()

    train = [stays[i] for i in split.train]
    val = [stays[i] for i in split.val]
    model = train_risk_model(train, val, cfg, on_epoch=progress)
    test = [stays[i] for i in split.test]
    y = np.array([s.death for s in test])
    model.metrics["test_auroc"] = auroc(y, model.predict_proba(test))
    model.metrics["split"] = split.to_dict()
    sha = save_artifact(model, args.out)
    sys.stdout.write(json.dumps({**model.metrics, "artifact": str(args.out), "sha256": sha}) + "\n")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from remote_care.ml.report import compare_on_test, format_table

    stays, split = _load(args)
    models = {}
    for path in args.artifact:
        m = load_artifact(path)
        if m.spec.name == "all":
            models["GRU, all variables"] = (m, False)
            models["GRU, all-variable model fed vitals only"] = (m, True)
        else:
            models[f"GRU, {m.spec.name}-only model"] = (m, True)
    t0 = time.perf_counter()
    comp = compare_on_test(stays, split, models)
    sys.stdout.write(format_table(comp))
    sys.stdout.write(f"(evaluated in {time.perf_counter() - t0:.0f}s)\n")
    if args.json:
        Path(args.json).write_text(json.dumps(comp.to_dict(), indent=1, default=float))
    return 0


def _crossval(args: argparse.Namespace) -> int:
    from remote_care.ml.report import cross_validate, format_cross_validation

    stays = load_set_a(
        args.data / "set-a.tar.gz", args.data / "Outcomes-a.txt", cache_dir=args.cache
    )
    cfg = TrainConfig(
        spec=args.spec,
        seeds=tuple(range(args.seeds)),
        threads=args.threads,
        severity_weight=args.severity_weight,
    )

    def progress(row: dict) -> None:
        sys.stdout.write(json.dumps(row, default=float) + "\n")
        sys.stdout.flush()

    cv = cross_validate(stays, cfg, n_folds=args.folds, seed=args.split_seed, on_fold=progress)
    sys.stdout.write(format_cross_validation(cv))
    if args.json:
        Path(args.json).write_text(json.dumps(cv.to_dict(), indent=1, default=float))
    return 0


def _progression(args: argparse.Namespace) -> int:
    from remote_care.ml.progression import cross_validate, diabetes_dataset, pbc_next_visit_dataset

    for data in (diabetes_dataset(), pbc_next_visit_dataset()):
        sys.stdout.write(
            f"\n{data.name}: {len(data.y)} rows, target {data.target}, "
            f"{args.folds}-fold CV{' grouped by patient' if data.groups is not None else ''}, "
            f"{int(args.level * 100)}% split-conformal intervals\n"
        )
        sys.stdout.write("| model | RMSE | MAE | R2 | coverage | mean width |\n")
        sys.stdout.write("|---|---|---|---|---|---|\n")
        for r in cross_validate(data, n_splits=args.folds, level=args.level):
            sys.stdout.write(
                f"| {r.model} | {r.rmse:.3f} | {r.mae:.3f} | {r.r2:.3f} | {r.coverage:.3f} | "
                f"{r.mean_width:.3f} |\n"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the sub-command and run it."""
    parser = argparse.ArgumentParser(prog="python -m remote_care.ml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("train-physionet", "evaluate", "crossval"):
        p = sub.add_parser(name)
        p.add_argument("--data", type=Path, default=DEFAULT_DATA)
        p.add_argument("--cache", type=Path, default=Path("var/cache"))
        p.add_argument("--split-seed", type=int, default=2012)
    tp = sub.choices["train-physionet"]
    tp.add_argument("--out", type=Path, required=True)
    tp.add_argument("--spec", choices=("all", "vitals"), default="all")
    tp.add_argument("--seeds", type=int, default=5, help="ensemble members")
    tp.add_argument("--max-epochs", type=int, default=40)
    tp.add_argument("--threads", type=int, default=1)
    tp.add_argument("--channel-dropout", type=float, default=0.2)
    ev = sub.choices["evaluate"]
    ev.add_argument("--artifact", type=Path, action="append", default=[])
    ev.add_argument("--json", type=Path, default=None)
    cv = sub.choices["crossval"]
    cv.add_argument("--spec", choices=("all", "vitals"), default="all")
    cv.add_argument("--seeds", type=int, default=5, help="ensemble members per fold")
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--threads", type=int, default=1)
    cv.add_argument("--json", type=Path, default=None)
    for p in (tp, cv):
        p.add_argument(
            "--severity-weight",
            type=float,
            default=TrainConfig.severity_weight,
            help="auxiliary SAPS-I/SOFA/length-of-stay regression (training labels only)",
        )
    pr = sub.add_parser("progression")
    pr.add_argument("--folds", type=int, default=5)
    pr.add_argument("--level", type=float, default=0.9)
    args = parser.parse_args(argv)
    handler = {
        "train-physionet": _train,
        "evaluate": _evaluate,
        "crossval": _crossval,
        "progression": _progression,
    }
    return handler[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
