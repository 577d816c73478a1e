"""Benchmark the drug-design models from the command line (no Django).

    python -m drugs.ml bench --samples 2000 --threads 1

Prints MOSES metrics for (a) a sample of the MOSES training set (the reference row), (b) the
generator after maximum-likelihood pre-training, (c) after adversarial training, with training
times, the random-character baseline, the published rows, and the time the metrics take.
Results go to stdout; bench/drugs_ml_notes.md records a run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import torch

from drugs.ml import gan, metrics
from drugs.ml.datasets import load_smiles_file, moses_10k_dir, moses_train_path


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.monotonic()
    out = fn(*args, **kwargs)
    _out(f"[{time.monotonic() - start:7.1f} s] {label}")
    return out


def bench(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    train = load_smiles_file(moses_10k_dir() / "train10k.csv")
    test = load_smiles_file(moses_10k_dir() / "test_10k.csv")
    n = args.samples
    _out(f"train {len(train)}  test {len(test)}  samples per row {n}  threads {args.threads}")
    ref = _timed(
        "test-set statistics (fingerprints, fragments, scaffolds, ChemNet)",
        metrics.reference_stats,
        test,
    )
    train_set = metrics.canonical_train_set(train)
    rows: dict[str, dict[str, float | None]] = {}

    # (a) a sample of the full MOSES training set, outside the 10k subset, as generated.
    # The whole file: its rows are not in random order, so a head sample is biased.
    pool = load_smiles_file(moses_train_path())
    rng = random.Random(0)
    in_subset = set(train)
    reference_sample = rng.sample([s for s in pool if s not in in_subset], n)
    rows["MOSES train sample"] = _timed(
        f"metrics of {n} training-set molecules",
        metrics.moses_metrics,
        reference_sample,
        train_set,
        ref,
    )

    baseline = gan.random_character_baseline(train, n, seed=0)
    rows["random characters"] = _timed(
        "metrics of the random-character baseline", metrics.moses_metrics, baseline, train_set, ref
    )

    config = gan.GanConfig(
        pretrain_epochs=args.pretrain_epochs,
        adversarial_epochs=args.adversarial_epochs,
        seed=0,
    )
    snapshots: dict[str, gan.GanArtifact] = {}

    def log(stats: gan.EpochStats) -> None:
        _out(
            f"  {stats.phase:11} {stats.epoch:2d} loss {stats.g_loss:.3f} "
            f"d {stats.d_loss if stats.d_loss is not None else '-'} valid {stats.validity:.3f} "
            f"unique {stats.uniqueness:.3f} novel {stats.novelty:.3f} reward "
            f"{stats.mean_reward if stats.mean_reward is not None else '-'} "
            f"({stats.seconds:.0f} s){' COLLAPSE' if stats.collapse_warning else ''}"
        )

    start = time.monotonic()
    artifact = gan.train_gan(
        config, train, on_epoch=log, on_pretrained=lambda a: snapshots.setdefault("pre", a)
    )
    total = time.monotonic() - start
    pre = snapshots["pre"]
    _out(f"pretrain {pre.training_seconds:.0f} s, total {total:.0f} s, {artifact.stopped_reason}")
    for label, model in (("ours: pretrained (MLE)", pre), ("ours: + adversarial", artifact)):
        sampled = model.sample(n, seed=1)
        rows[label] = _timed(f"metrics of {label}", metrics.moses_metrics, sampled, train_set, ref)
    for name in ("CharRNN", "LatentGAN"):
        rows[f"published {name}"] = dict(metrics.MOSES_PUBLISHED[name])
    _out(metrics.format_table(rows))
    _out(json.dumps({"rows": rows, "pretrain_s": pre.training_seconds, "total_s": total}))

    if args.timing:
        for size in args.timing:
            molecules = (pool * (size // len(pool) + 1))[:size]
            _timed(
                f"moses_metrics on {size} molecules (test statistics cached)",
                metrics.moses_metrics,
                molecules,
                train_set,
                ref,
            )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m drugs.ml")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="MOSES metrics of the GAN on the 10k subset")
    b.add_argument("--samples", type=int, default=2000)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--pretrain-epochs", type=int, default=gan.GanConfig.pretrain_epochs)
    b.add_argument("--adversarial-epochs", type=int, default=gan.GanConfig.adversarial_epochs)
    b.add_argument("--timing", type=int, nargs="*", default=[], help="e.g. 10000 30000")
    args = parser.parse_args()
    if args.command == "bench":
        bench(args)


if __name__ == "__main__":
    main()
