"""Chemistry with RDKit: SMILES checks, molecule files, drug-likeness properties, drawings, search.

Everything takes and returns SMILES strings (RDKit canonical where stated) and plain dataclasses,
so callers never hold RDKit objects.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import xml.etree.ElementTree as ET  # noqa: S405 -- parses only RDKit's own SVG output
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache

import numpy as np
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdFingerprintGenerator, rdMolDescriptors
from rdkit.Chem import FilterCatalog as RDFilterCatalog
from rdkit.Chem.Draw import rdMolDraw2D
from rdkit.Contrib.SA_Score import sascorer

from medai_ml.plain import finite_or_none

# Uploads are read whole into memory; a gzip member is capped so a tiny "bomb" cannot expand
# without bound.
MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024
# Keep the first errors verbatim; the total is still counted.
MAX_REPORTED_ERRORS = 1000
SMILES_COLUMNS = (
    "smiles",
    "canonical_smiles",
    "isomeric_smiles",
    "smile",
    "smiles_string",
    "mol",
    "molecule",
    "structure",
)
NAME_COLUMNS = ("name", "id", "mol_id", "compound_id", "compound", "title", "molecule_name", "cid")
_MAX_SVG_SIDE = 2000


class MoleculeFileError(ValueError):
    """The upload is not a molecule file at all; the message says why, for the researcher."""


@dataclass(frozen=True)
class ParsedMolecule:
    """One readable molecule: `smiles` is RDKit-canonical; `values` holds numeric columns."""

    line: int
    smiles: str
    name: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ParseError:
    """One rejected line (or SDF record, by its first line) with the reason."""

    line: int
    text: str
    message: str


@dataclass
class ParsedMolecules:
    """The molecules read from a file and the rejected lines.

    `errors` keeps the first MAX_REPORTED_ERRORS; `error_count` counts them all.
    """

    molecules: list[ParsedMolecule]
    errors: list[ParseError]
    error_count: int = 0
    smiles_column: str | None = None
    value_columns: list[str] = field(default_factory=list)

    @property
    def canonical_smiles(self) -> list[str]:
        return [m.smiles for m in self.molecules]


# ---------------------------------------------------------------------------------------------
# SMILES


def _rdkit_message(log: str) -> str:
    """The first useful line of an RDKit error log, without timestamps and prefixes."""
    lines = [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", line).strip() for line in log.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return "not a valid SMILES"
    first = lines[0].removeprefix("SMILES Parse Error: ")
    first = re.sub(r" (while parsing|for input): .*$", "", first)
    for line in lines:
        found = re.search(r"around position (\d+)", line)
        if found:
            return f"{first} (around character {found.group(1)})"
    return first


def mol_from_smiles(smiles: str) -> Chem.Mol | None:
    """RDKit molecule or None, without RDKit's stderr noise."""
    if not smiles or not isinstance(smiles, str):
        return None
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles)


def check_smiles(smiles: str) -> tuple[Chem.Mol | None, str]:
    """(molecule, "") for a valid SMILES, else (None, why it is not one)."""
    text = smiles.strip()
    if not text:
        return None, "empty SMILES"
    if any(ch.isspace() for ch in text):
        return None, "a SMILES cannot contain spaces"
    mol = mol_from_smiles(text)
    if mol is None:
        # Parse again only to capture the reason: BlockLogs (which keeps warnings off stderr for
        # the valid majority) also blocks the error capture.
        with rdBase.CaptureErrorLog() as log:
            Chem.MolFromSmiles(text)
        return None, _rdkit_message(log.messages)
    if mol.GetNumAtoms() == 0:
        return None, "no atoms"
    return mol, ""


def canonical_smiles(smiles: str) -> str | None:
    """RDKit canonical SMILES (isomeric), or None when the SMILES is not a valid molecule."""
    mol = mol_from_smiles(smiles.strip()) if isinstance(smiles, str) else None
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(mol)


def canonical_many(smiles: Iterable[str]) -> list[str | None]:
    return [canonical_smiles(s) for s in smiles]


# ---------------------------------------------------------------------------------------------
# Molecule files


def parse_molecule_file(
    data: bytes,
    filename: str,
    *,
    smiles_column: str | None = None,
    max_molecules: int = 2_000_000,
) -> ParsedMolecules:
    """Read an uploaded .smi/.txt, .csv/.tsv (optionally .gz) or .sdf file.

    Lines that are not valid molecules become `ParseError`s with RDKit's reason; a file that is
    not a molecule file at all (binary, not UTF-8, empty, no SMILES column, nothing readable,
    more than `max_molecules`) raises `MoleculeFileError` with a message for the researcher.
    """
    name = (filename or "").strip().lower()
    if name.endswith(".gz"):
        data = _gunzip(data, filename)
        name = name.removesuffix(".gz")
    if not data.strip():
        raise MoleculeFileError("The file is empty.")
    if data[:2] == b"\x1f\x8b":
        raise MoleculeFileError("The file is gzip-compressed but not named .gz.")
    if b"\x00" in data[:65536]:
        raise MoleculeFileError(
            "This is a binary file, not a molecule file (expected SMILES, CSV or SDF text)."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MoleculeFileError(
            f"The file is not UTF-8 text (undecodable byte at offset {exc.start}); "
            "save it as UTF-8 and upload it again."
        ) from exc

    if name.endswith((".smi", ".smiles", ".txt")):
        result = _parse_smiles_lines(text, max_molecules)
    elif name.endswith((".csv", ".tsv")):
        result = _parse_csv(text, smiles_column, max_molecules, tab=name.endswith(".tsv"))
    elif name.endswith((".sdf", ".sd", ".mol")):
        result = _parse_sdf(text, max_molecules)
    else:
        raise MoleculeFileError(
            f"Unsupported file type {filename!r}: upload .smi, .txt, .csv, .tsv or .sdf "
            "(optionally gzipped as .gz)."
        )
    if not result.molecules:
        detail = "; ".join(f"line {e.line}: {e.message}" for e in result.errors[:3])
        raise MoleculeFileError(
            "No valid molecule was found in the file"
            + (f" ({result.error_count} rejected lines; first: {detail})." if detail else ".")
        )
    return result


def _gunzip(data: bytes, filename: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            out = handle.read(MAX_DECOMPRESSED_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise MoleculeFileError(f"{filename} is named .gz but is not a valid gzip file.") from exc
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise MoleculeFileError(
            f"{filename} expands to more than {MAX_DECOMPRESSED_BYTES // 2**20} MiB."
        )
    return out


class _Collector:
    """Accumulates molecules and errors with the caps applied."""

    def __init__(self, max_molecules: int) -> None:
        self.max_molecules = max_molecules
        self.molecules: list[ParsedMolecule] = []
        self.errors: list[ParseError] = []
        self.error_count = 0

    def error(self, line: int, text: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(ParseError(line, text[:200], message))

    def add(self, line: int, mol: Chem.Mol, name: str, values: dict[str, float]) -> None:
        if len(self.molecules) >= self.max_molecules:
            raise MoleculeFileError(
                f"The file has more than {self.max_molecules:,} molecules; split it or use a "
                "subset."
            )
        self.molecules.append(ParsedMolecule(line, Chem.MolToSmiles(mol), name, values))

    def result(self, **extra: object) -> ParsedMolecules:
        return ParsedMolecules(self.molecules, self.errors, self.error_count, **extra)  # type: ignore[arg-type]


def _parse_smiles_lines(text: str, max_molecules: int) -> ParsedMolecules:
    out = _Collector(max_molecules)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        smiles = parts[0]
        name = parts[1].strip() if len(parts) > 1 else ""
        if number == 1 and smiles.lower() in SMILES_COLUMNS:
            continue  # a header line such as "smiles name"
        mol, why = check_smiles(smiles)
        if mol is None:
            out.error(number, raw, why)
        else:
            out.add(number, mol, name[:200], {})
    return out.result()


def _to_float(text: str) -> float | None:
    try:
        return finite_or_none(text)
    except (TypeError, ValueError):
        return None


def _looks_like_smiles_column(values: list[str]) -> bool:
    filled = [v for v in values if v.strip()]
    if not filled or all(_to_float(v) is not None for v in filled):
        return False
    good = sum(1 for v in filled if check_smiles(v)[0] is not None)
    return good >= 0.8 * len(filled)


def _parse_csv(
    text: str, smiles_column: str | None, max_molecules: int, *, tab: bool
) -> ParsedMolecules:
    first_line = text.split("\n", 1)[0]
    if tab or first_line.count("\t") > max(first_line.count(","), first_line.count(";")):
        delimiter = "\t"
    elif first_line.count(";") > first_line.count(","):
        delimiter = ";"
    else:
        delimiter = ","
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise MoleculeFileError(f"The CSV file could not be read: {exc}.") from exc
    if not rows:
        raise MoleculeFileError("The file is empty.")
    header = [h.strip() for h in rows[0]]
    if len(header) < 1 or not any(header):
        raise MoleculeFileError("The CSV file has no header row.")
    lowered = [h.lower().replace(" ", "_") for h in header]

    if smiles_column is not None:
        if smiles_column not in header:
            raise MoleculeFileError(
                f"The CSV has no column named {smiles_column!r} (columns: {', '.join(header)})."
            )
        column = header.index(smiles_column)
    else:
        column = next((lowered.index(c) for c in SMILES_COLUMNS if c in lowered), -1)
        if column < 0:
            sample = rows[1:51]
            for index in range(len(header)):
                if _looks_like_smiles_column([r[index] for r in sample if len(r) > index]):
                    column = index
                    break
        if column < 0:
            raise MoleculeFileError(
                "No SMILES column found: name one 'smiles' (columns: "
                f"{', '.join(header[:20])}{', ...' if len(header) > 20 else ''})."
            )
    name_column = next((lowered.index(c) for c in NAME_COLUMNS if c in lowered), -1)
    others = [i for i in range(len(header)) if i not in (column, name_column) and header[i]]

    out = _Collector(max_molecules)
    numeric_seen: set[int] = set()
    # csv.reader line numbers are not kept after list(); rows are one per physical line except
    # for quoted multi-line fields, which molecule tables do not use.
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) <= column:
            out.error(number, delimiter.join(row), "no value in the SMILES column")
            continue
        smiles = row[column].strip()
        mol, why = check_smiles(smiles)
        if mol is None:
            out.error(number, delimiter.join(row), why)
            continue
        values: dict[str, float] = {}
        for index in others:
            if index < len(row):
                value = _to_float(row[index].strip())
                if value is not None:
                    values[header[index]] = value
                    numeric_seen.add(index)
        name = row[name_column].strip()[:200] if 0 <= name_column < len(row) else ""
        out.add(number, mol, name, values)
    return out.result(
        smiles_column=header[column], value_columns=[header[i] for i in sorted(numeric_seen)]
    )


def _sdf_records(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, record text) for each record of an SD file."""
    start = 1
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() == "$$$$":
            yield start, "\n".join(lines)
            lines = []
            start = number + 1
        else:
            lines.append(line)
    if any(line.strip() for line in lines):
        yield start, "\n".join(lines)


def _sdf_data_items(record: str) -> dict[str, str]:
    items: dict[str, str] = {}
    _, _, tail = record.partition("M  END")
    key: str | None = None
    for line in tail.splitlines():
        if line.startswith(">"):
            found = re.search(r"<([^>]+)>", line)
            key = found.group(1).strip() if found else None
        elif key is not None:
            if line.strip() == "":
                key = None
            elif key not in items:
                items[key] = line.strip()
    return items


def _parse_sdf(text: str, max_molecules: int) -> ParsedMolecules:
    if "M  END" not in text and "V2000" not in text and "V3000" not in text:
        raise MoleculeFileError("This does not look like an SD file (no molfile blocks).")
    out = _Collector(max_molecules)
    numeric: set[str] = set()
    for start, record in _sdf_records(text):
        if not record.strip():
            continue
        title = record.splitlines()[0].strip() if record.splitlines() else ""
        with rdBase.BlockLogs():
            mol = Chem.MolFromMolBlock(record)
        if mol is None or mol.GetNumAtoms() == 0:
            with rdBase.CaptureErrorLog() as log:
                Chem.MolFromMolBlock(record)
            message = _rdkit_message(log.messages) if log.messages else "unreadable molfile"
            out.error(start, title or record[:80], message)
            continue
        items = _sdf_data_items(record)
        values = {k: v for k, v in ((k, _to_float(v)) for k, v in items.items()) if v is not None}
        numeric.update(values)
        name = title or next(
            (items[k] for k in items if k.lower() in NAME_COLUMNS),
            "",
        )
        out.add(start, mol, name[:200], values)  # type: ignore[arg-type]
    return out.result(value_columns=sorted(numeric))


# ---------------------------------------------------------------------------------------------
# Properties


@dataclass(frozen=True)
class MolProperties:
    """Drug-likeness descriptors of one molecule (RDKit implementations)."""

    mw: float
    logp: float
    tpsa: float
    hbd: int
    hba: int
    rotatable_bonds: int
    qed: float
    sa_score: float  # Ertl & Schuffenhauer 2009: 1 (easy to make) .. 10 (hard)
    lipinski_violations: int
    lipinski_pass: bool  # Lipinski's rule of five, at most one violation (as Lipinski states it)
    pains_pass: bool  # no PAINS A/B/C alert (Baell & Holloway 2010)
    moses_filters_pass: bool  # the MOSES filters: MCF + PAINS, allowed atoms, no charge, rings < 8

    def to_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


@cache
def _pains_catalog() -> RDFilterCatalog.FilterCatalog:
    params = RDFilterCatalog.FilterCatalogParams()
    params.AddCatalog(RDFilterCatalog.FilterCatalogParams.FilterCatalogs.PAINS)
    return RDFilterCatalog.FilterCatalog(params)


@cache
def _moses_filter_patterns() -> tuple[Chem.Mol, ...]:
    """The MOSES medicinal-chemistry (MCF) and PAINS SMARTS, read from the molsets wheel."""
    from drugs.ml.datasets import molsets_file

    patterns: list[Chem.Mol] = []
    with open(molsets_file("moses/metrics/mcf.csv"), encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        patterns.extend(Chem.MolFromSmarts(row[1]) for row in reader if len(row) > 1)
    with open(molsets_file("moses/metrics/wehi_pains.csv"), encoding="utf-8", newline="") as h:
        patterns.extend(Chem.MolFromSmarts(row[0].strip()) for row in csv.reader(h) if row)
    return tuple(p for p in patterns if p is not None)


_SCREEN_BITS = 2048


@cache
def _moses_filter_screen() -> tuple[tuple[DataStructs.ExplicitBitVect, Chem.Mol], ...]:
    """Each MOSES filter pattern with its RDKit pattern fingerprint: a molecule can contain the
    pattern only if its own pattern fingerprint has all of the pattern's bits (RDKit's
    substructure screen), so most of the ~500 substructure searches are skipped."""
    return tuple(
        (Chem.PatternFingerprint(p, fpSize=_SCREEN_BITS), p) for p in _moses_filter_patterns()
    )


_MOSES_ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})


def passes_moses_filters(mol: Chem.Mol) -> bool:
    """MOSES `mol_passes_filters`: the filters the MOSES data set itself was built with."""
    ring_info = mol.GetRingInfo()
    if any(len(ring) >= 8 for ring in ring_info.AtomRings()):
        return False
    if any(atom.GetFormalCharge() != 0 for atom in mol.GetAtoms()):
        return False
    if any(atom.GetSymbol() not in _MOSES_ALLOWED_ATOMS for atom in mol.GetAtoms()):
        return False
    h_mol = Chem.AddHs(mol)
    screen = Chem.PatternFingerprint(h_mol, fpSize=_SCREEN_BITS)
    if any(
        DataStructs.AllProbeBitsMatch(bits, screen) and h_mol.HasSubstructMatch(p)
        for bits, p in _moses_filter_screen()
    ):
        return False
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(smiles) and mol_from_smiles(smiles) is not None


def passes_pains(mol: Chem.Mol) -> bool:
    return not _pains_catalog().HasMatch(mol)


def lipinski_violations(mol: Chem.Mol) -> int:
    return sum(
        (
            Descriptors.MolWt(mol) > 500,
            Crippen.MolLogP(mol) > 5,
            Lipinski.NumHDonors(mol) > 5,
            Lipinski.NumHAcceptors(mol) > 10,
        )
    )


def sa_score(mol: Chem.Mol) -> float:
    return float(sascorer.calculateScore(mol))


def qed_score(mol: Chem.Mol) -> float:
    return float(QED.qed(mol))


def properties_of_mol(mol: Chem.Mol) -> MolProperties:
    violations = lipinski_violations(mol)
    return MolProperties(
        mw=round(float(Descriptors.MolWt(mol)), 3),
        logp=round(float(Crippen.MolLogP(mol)), 3),
        tpsa=round(float(rdMolDescriptors.CalcTPSA(mol)), 3),
        hbd=int(Lipinski.NumHDonors(mol)),
        hba=int(Lipinski.NumHAcceptors(mol)),
        rotatable_bonds=int(rdMolDescriptors.CalcNumRotatableBonds(mol)),
        qed=round(qed_score(mol), 4),
        sa_score=round(sa_score(mol), 4),
        lipinski_violations=violations,
        lipinski_pass=violations <= 1,
        pains_pass=passes_pains(mol),
        moses_filters_pass=passes_moses_filters(mol),
    )


def mol_properties(smiles: str) -> MolProperties | None:
    """Descriptors of one molecule, or None for an invalid SMILES."""
    mol = mol_from_smiles(smiles)
    return properties_of_mol(mol) if mol is not None and mol.GetNumAtoms() else None


def properties_many(smiles: list[str]) -> list[MolProperties | None]:
    return [mol_properties(s) for s in smiles]


# ---------------------------------------------------------------------------------------------
# Drawing

_SVG_NS = "http://www.w3.org/2000/svg"
_SAFE_TAGS = frozenset(
    {
        "svg",
        "g",
        "path",
        "rect",
        "circle",
        "ellipse",
        "line",
        "polyline",
        "polygon",
        "text",
        "tspan",
        "title",
        "desc",
    }
)
_SAFE_ATTRIBUTES = frozenset(
    {
        "version",
        "baseProfile",
        "width",
        "height",
        "viewBox",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "cx",
        "cy",
        "r",
        "rx",
        "ry",
        "d",
        "points",
        "style",
        "class",
        "fill",
        "stroke",
        "stroke-width",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-opacity",
        "fill-opacity",
        "opacity",
        "font-size",
        "font-family",
        "font-weight",
        "text-anchor",
        "dominant-baseline",
        "transform",
        "xml:space",
    }
)
_UNSAFE_STYLE = re.compile(r"url\s*\(|expression\s*\(|javascript:|@import|behavior\s*:", re.I)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _sanitise_svg(svg: str) -> str:
    """Keep only drawing elements and presentational attributes; drop everything else."""
    root = ET.fromstring(svg)  # noqa: S314 -- RDKit's own output, never user-supplied XML

    def clean(element: ET.Element) -> None:
        for child in list(element):
            if _local(child.tag) not in _SAFE_TAGS:
                element.remove(child)
            else:
                clean(child)
        for attribute in list(element.attrib):
            local = (
                _local(attribute)
                if not attribute.startswith("{http://www.w3.org/XML")
                else ("xml:" + _local(attribute))
            )
            value = element.attrib[attribute]
            if local not in _SAFE_ATTRIBUTES or _UNSAFE_STYLE.search(value):
                del element.attrib[attribute]

    if _local(root.tag) != "svg":
        raise ValueError("not an SVG document")
    clean(root)
    ET.register_namespace("", _SVG_NS)
    return ET.tostring(root, encoding="unicode")


def draw_svg(smiles: str, width: int = 240, height: int = 180) -> str:
    """An inline-safe SVG drawing of the molecule (no scripts, handlers or external references).

    Raises ValueError for an invalid SMILES.
    """
    mol, why = check_smiles(smiles)
    if mol is None:
        raise ValueError(f"invalid SMILES: {why}")
    width = max(20, min(int(width), _MAX_SVG_SIDE))
    height = max(20, min(int(height), _MAX_SVG_SIDE))
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    drawer.drawOptions().clearBackground = False
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return _sanitise_svg(drawer.GetDrawingText())


# ---------------------------------------------------------------------------------------------
# Similarity search

_MORGAN_2048 = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)


def morgan_fingerprint(mol: Chem.Mol) -> DataStructs.ExplicitBitVect:
    """Morgan radius 2 (ECFP4-like), 2048 bits: the fingerprint for similarity search."""
    return _MORGAN_2048.GetFingerprint(mol)


def morgan_matrix(smiles: list[str], n_bits: int = 2048, radius: int = 2) -> np.ndarray:
    """(n, n_bits) uint8 Morgan bits; rows of zeros for invalid SMILES."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    out = np.zeros((len(smiles), n_bits), dtype=np.uint8)
    for i, s in enumerate(smiles):
        mol = mol_from_smiles(s)
        if mol is not None:
            out[i] = generator.GetFingerprintAsNumPy(mol)
    return out


class FingerprintIndex:
    """Tanimoto nearest-neighbour search over a fixed reference set (Morgan r=2, 2048 bits)."""

    def __init__(self, reference: Iterable[str]) -> None:
        self.smiles: list[str] = []
        self.fingerprints: list[DataStructs.ExplicitBitVect] = []
        for s in reference:
            mol = mol_from_smiles(s)
            if mol is not None and mol.GetNumAtoms():
                self.smiles.append(s)
                self.fingerprints.append(morgan_fingerprint(mol))

    def __len__(self) -> int:
        return len(self.smiles)

    def similarities(self, smiles: str) -> np.ndarray:
        mol, why = check_smiles(smiles)
        if mol is None:
            raise ValueError(f"invalid SMILES: {why}")
        fp = morgan_fingerprint(mol)
        return np.asarray(DataStructs.BulkTanimotoSimilarity(fp, self.fingerprints))

    def nearest(self, smiles: str, k: int = 5) -> list[tuple[str, float]]:
        """The k most similar reference molecules, most similar first."""
        if not self.fingerprints or k <= 0:
            return []
        sims = self.similarities(smiles)
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.lexsort((top, -sims[top]))]
        return [(self.smiles[i], float(sims[i])) for i in top]


def nearest_neighbours(smiles: str, reference: list[str], k: int = 5) -> list[tuple[str, float]]:
    """The k reference molecules most similar to `smiles` (Tanimoto, Morgan r=2 2048 bits)."""
    return FingerprintIndex(reference).nearest(smiles, k)
