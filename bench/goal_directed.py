"""Goal-directed design against its baselines (GuacaMol-style), outside the web stack: fine-tune
the shipped prior on the MOSES 10k subset for an objective (the design form's defaults: QED 0.5,
synthesisability 0.25, realism 1; 6 pre-training + 4 adversarial epochs; 2,000 samples), then
compare the run's top-100 on that objective (no realism term) with (a) the best 100 of a seeded
sample of the full MOSES training set and (b) the prior sampled without optimisation, the same
number of molecules with the same seed. The same functions the design run's worker calls
(drugs.ml.goal); the scored training sample is cached under --cache-dir per objective.

    .venv/bin/python bench/goal_directed.py [--pretrain-epochs 6] [--adversarial-epochs 4] \
        [--n 2000] [--baseline-size 100000] [--threads 1] [--baseline-only] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--adversarial-epochs", type=int, default=4)
    parser.add_argument("--w-qed", type=float, default=0.5)
    parser.add_argument("--w-sa", type=float, default=0.25)
    parser.add_argument("--w-realism", type=float, default=1.0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--n", type=int, default=2000, help="molecules sampled (run and prior)")
    parser.add_argument("--train", type=int, default=10_000, help="training molecules")
    parser.add_argument("--baseline-size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache-dir", default=str(ROOT / "var" / "cache" / "drugs-goal"))
    parser.add_argument("--baseline-only", action="store_true", help="score the baseline only")
    parser.add_argument("--json", default="", help="also write the comparison here")
    return parser.parse_args()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline(args: argparse.Namespace, scorer):
    from drugs.ml.datasets import load_smiles_file, moses_train_path
    from drugs.ml.goal import baseline_cache_key, scored_baseline, seeded_sample

    path = moses_train_path()
    key = baseline_cache_key(
        weights=scorer.weights,
        predictor="",
        source=path.name,
        size=args.baseline_size,
        seed=args.seed,
    )
    t0, c0 = time.perf_counter(), cpu()
    found = scored_baseline(
        key=key,
        cache_dir=Path(args.cache_dir),
        load=lambda: seeded_sample(load_smiles_file(path), args.baseline_size, args.seed),
        score_fn=scorer,
    )
    print(
        f"baseline: {found.n_sampled:,} MOSES train molecules, {len(found.scores):,} scored, "
        f"cached={found.cached}, {time.perf_counter() - t0:.1f} s wall, {cpu() - c0:.1f} s CPU",
        flush=True,
    )
    return found


def main() -> None:
    args = parse()
    import torch

    from drugs.ml import chem
    from drugs.ml.datasets import load_smiles_file
    from drugs.ml.gan import GanArtifact, GanConfig, train_gan
    from drugs.ml.goal import GoalScorer, KnownScores, top_k_comparison

    torch.set_num_threads(args.threads)
    config = GanConfig(
        pretrain_epochs=args.pretrain_epochs,
        adversarial_epochs=args.adversarial_epochs,
        w_qed=args.w_qed,
        w_sa=args.w_sa,
        w_realism=args.w_realism,
        temperature=args.temperature,
        seed=args.seed,
    )
    scorer = GoalScorer(config.reward_weights())
    print(f"objective {scorer.weights} (realism left out), torch threads {args.threads}")
    if args.baseline_only:
        baseline(args, scorer)
        return
    prior = GanArtifact.load(ROOT / "data" / "models" / "drugs-generator-prior" / "generator.pt")
    train = load_smiles_file(ROOT / "data" / "molecules" / "moses_10k" / "train10k.csv")
    train = train[: args.train]
    t0, c0 = time.perf_counter(), cpu()

    def on_epoch(stats) -> None:
        print(
            f"  {stats.phase} {stats.epoch}: valid {stats.validity:.2f} unique "
            f"{stats.uniqueness:.2f} reward {stats.mean_reward} ({stats.seconds:.0f} s)",
            flush=True,
        )

    tuned = train_gan(config, train, init=prior, on_epoch=on_epoch)
    print(
        f"fine-tuned in {time.perf_counter() - t0:.0f} s wall, {cpu() - c0:.0f} s CPU "
        f"({tuned.stopped_reason})",
        flush=True,
    )

    def sample(artifact) -> list[str]:
        raw = artifact.sample(args.n, temperature=args.temperature, seed=args.seed)
        return [c for c in (chem.canonical_smiles(s) for s in raw) if c]

    run_smiles, prior_smiles = sample(tuned), sample(prior)
    found = baseline(args, scorer)
    t0, c0 = time.perf_counter(), cpu()
    result = top_k_comparison(
        run_smiles=run_smiles,
        baselines={"train": list(found.scores), "prior": prior_smiles},
        score_fn=KnownScores(scorer, found.scores),
    )
    print(f"comparison: {time.perf_counter() - t0:.1f} s wall, {cpu() - c0:.1f} s CPU")
    names = {
        "run": f"fine-tuned run ({args.n:,} sampled)",
        "train": f"best 100 of {found.n_sampled:,} MOSES train",
        "prior": f"prior, no optimisation ({args.n:,} sampled)",
    }
    rows = {"run": result.run, **result.baselines}
    print(f"{'row':44} top100  top10   top1    IntDiv  scored")
    for key, row in rows.items():
        intdiv = f"{row.intdiv:.3f}" if row.intdiv is not None else "—"
        print(
            f"{names[key]:44} {row.top_k_mean:.4f}  {row.top_10_mean:.4f}  {row.top_1:.4f}  "
            f"{intdiv:6}  {row.n_scored:,}"
        )
    print("beats:", result.beats)
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))


if __name__ == "__main__":
    main()
