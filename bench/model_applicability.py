"""Applicability checks of the non-imaging models, measured on their own training data: the
share of the training/trial population each check flags, and how an out-of-domain example is
answered. No database; the models' pure ``ml`` code only.

    .venv/bin/python bench/model_applicability.py [--endpoints BBBP ESOL] [--trees 100]

Prints, per model, ``<model>: n N, flagged K, rate R`` and one line per example.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def risk() -> None:
    """Deterioration risk: the input contract on PhysioNet 2012 set A (whole 48-h stays)."""
    from remote_care.ml.applicability import check_inputs, fit_input_contract
    from remote_care.ml.physionet import load_set_a, stay_from_vitals

    shared = Path(os.environ.get("MEDAI_SHARED_DIR", ROOT.parent / "shared"))
    data = shared / "datasets" / "physio" / "physionet2012"
    stays = load_set_a(data / "set-a.tar.gz", data / "Outcomes-a.txt")
    contract = fit_input_contract(stays, "PhysioNet 2012 set A")
    flagged = sum(not check_inputs(s, contract)["sufficient"] for s in stays)
    print(
        f"risk (PhysioNet 2012 set A stays): n {len(stays)}, flagged {flagged}, "
        f"rate {flagged / len(stays):.3f}"
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    vitals = {"heart_rate": 80.0, "spo2": 97.0, "respiratory_rate": 15.0, "temperature": 36.9}
    examples = {
        "home, 3 sets over 4 h": [
            {"taken_at": start + timedelta(hours=h), **vitals} for h in (0, 2, 4)
        ],
        "home, one set": [{"taken_at": start, **vitals}],
        "home, heart rate 230": [
            {"taken_at": start + timedelta(hours=h), **vitals, "heart_rate": 230.0 if h else 80.0}
            for h in (0, 2)
        ],
    }
    for name, readings in examples.items():
        result = check_inputs(stay_from_vitals(readings), contract)
        verdict = "scored" if result["sufficient"] else f"insufficient data: {result['reason']}"
        print(f"  {name}: {verdict}")


def treatment() -> None:
    """Treatment options: out-of-fold Mahalanobis flag rate per trial."""
    from medai_ml.plain import to_plain
    from treatment.ml.applicability import fit_trial_distance, trial_distance
    from treatment.ml.trials import TRIALS, load_trial

    for key in TRIALS:
        data = load_trial(key)
        fitted = fit_trial_distance(data.definition, data.X.to_numpy(dtype=float))
        n = fitted["n"]
        rate = fitted["flag_rate_out_of_fold"]
        print(
            f"treatment {key} (trial patients, out of fold): n {n}, "
            f"flagged {round(rate * n)}, rate {rate:.3f} (threshold {fitted['threshold']:.2f})"
        )
        if key == "gbsg2":
            typical = to_plain(data.raw.iloc[0].to_dict())
            odd = {
                **typical,
                "age": 21,
                "menostat": "Post",
                "tsize": 120,
                "tgrade": "I",
                "pnodes": 51,
                "progrec": 2380,
                "estrec": 0,
            }
            for name, patient in (("first trial patient", typical), ("atypical", odd)):
                result = trial_distance(key, fitted, patient)
                print(f"  {name}: {result['status']}, distance {result['distance']:.2f}")


def drugs(endpoints: list[str], trees: int) -> None:
    """Property predictors: share of held-out (scaffold CV) molecules outside the domain."""
    from drugs.ml.predictors import fit_predictor, load_endpoint

    for endpoint in endpoints:
        smiles, y, task = load_endpoint(endpoint)
        artifact, _ = fit_predictor(smiles, y, task, n_estimators=trees, endpoint=endpoint)
        d = artifact.domain
        outside = round(d["cv_outside_rate"] * d["cv_n"])
        print(
            f"drugs {endpoint} (held-out CV molecules): n {d['cv_n']}, flagged {outside}, "
            f"rate {d['cv_outside_rate']:.3f} (threshold {d['threshold']:.2f})"
        )
        train_flagged = sum(v["status"] == "outside" for v in artifact.applicability(smiles))
        print(f"  training molecules: n {len(smiles)}, flagged {train_flagged}")
        for s in ("[Fe+2].[Cl-].[Cl-]", "C[Si](C)(C)O[Si](C)(C)C"):
            print(f"  {s}: {artifact.applicability([s])[0]['text']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", nargs="*", default=["BBBP", "ESOL"])
    parser.add_argument("--trees", type=int, default=100)
    args = parser.parse_args()
    risk()
    treatment()
    drugs(args.endpoints, args.trees)


if __name__ == "__main__":
    main()
