"""A run's molecules as CSV (safe to open in a spreadsheet) or SDF (for chemistry tools)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from drugs.ml.domain import domain_text
from medai_site.core.csv_export import csv_safe_cell

COLUMNS = (
    "smiles",
    "count",
    "novel",
    "mw",
    "logp",
    "tpsa",
    "hbd",
    "hba",
    "rotatable_bonds",
    "qed",
    "sa_score",
    "lipinski_pass",
    "pains_pass",
    "moses_filters_pass",
)


def _row(molecule: Any, endpoints: list[str], notes: dict[int, str]) -> dict[str, Any]:
    row = {c: getattr(molecule, c) for c in COLUMNS}
    for endpoint in endpoints:
        row[f"predicted_{endpoint}"] = (molecule.predictions or {}).get(endpoint)
        # Shipped beside every value, so a spreadsheet or a chemistry tool never sees a
        # prediction without whether the predictor had seen anything like the molecule.
        row[f"domain_{endpoint}"] = domain_text((molecule.applicability or {}).get(endpoint))
    row["id"] = molecule.pk
    row["note"] = notes.get(molecule.pk, "")
    return row


def molecules_csv(molecules: Iterable[Any], endpoints: list[str], notes: dict[int, str]) -> str:
    """CSV of the molecules, one row each, with predictions and the researcher's notes."""
    predicted = [c for e in endpoints for c in (f"predicted_{e}", f"domain_{e}")]
    header = ["id", *COLUMNS, *predicted, "note"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for molecule in molecules:
        row = _row(molecule, endpoints, notes)
        # Names and notes are free text: cells a spreadsheet would run as formulas are escaped.
        writer.writerow({k: csv_safe_cell(v) for k, v in row.items()})
    return out.getvalue()


def molecules_sdf(molecules: Iterable[Any], endpoints: list[str], notes: dict[int, str]) -> str:
    """SD file with 2D coordinates and every value as a data item."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    out = io.StringIO()
    writer = Chem.SDWriter(out)
    for molecule in molecules:
        mol = Chem.MolFromSmiles(molecule.smiles)
        if mol is None:
            continue
        AllChem.Compute2DCoords(mol)
        row = _row(molecule, endpoints, notes)
        mol.SetProp("_Name", f"MedAI molecule {molecule.pk}")
        for key, value in row.items():
            if value is None or value == "":
                continue
            # SD data lines cannot hold line breaks.
            mol.SetProp(key, " ".join(str(value).split()))
        writer.write(mol)
    writer.close()
    return out.getvalue()
