"""Where demo and bulk patients come from: built-in trial data sets and uploaded CSV files.

A built-in source is a declaration (file, separator, how a row becomes a patient), so another
data set is a new entry here, not new code.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from medai_site.patients.models import Patient

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 20_000
REQUIRED_COLUMNS = ("mrn", "given_name", "family_name", "birth_date", "sex")

# Synthetic names for de-identified trial records; deterministic per row so re-imports match.
_GIVEN_F = [
    "Anna",
    "Maria",
    "Ingrid",
    "Sabine",
    "Claudia",
    "Petra",
    "Monika",
    "Ursula",
    "Helga",
    "Karin",
    "Renate",
    "Elke",
    "Brigitte",
    "Gisela",
    "Heike",
    "Birgit",
]
_GIVEN_M = ["Peter", "Thomas", "Michael", "Andreas", "Stefan", "Jürgen", "Klaus", "Frank"]
_FAMILY = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Krüger",
    "Werner",
    "Lehmann",
]


@dataclass
class PatientRow:
    line: int
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str
    clinical_facts: dict[str, Any] = field(default_factory=dict)
    synthetic_name: bool = False


@dataclass
class RowError:
    line: int
    message: str


@dataclass(frozen=True)
class BuiltinSource:
    key: str
    label: str
    description: str
    path: Path
    delimiter: str
    to_patient: Callable[[int, dict[str, str]], PatientRow]


def _pick(seq: list[str], seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return seq[int.from_bytes(digest[:4], "big") % len(seq)]


def _number(value: str) -> float | int | str:
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


def _gbsg2_row(index: int, row: dict[str, str]) -> PatientRow:
    mrn = f"GBSG2-{index:04d}"
    age = int(float(row["age"]))
    # Trial ages are at enrolment; the demo treats enrolment as today so ages read naturally.
    offset = int(hashlib.sha256(mrn.encode()).hexdigest()[:6], 16) % 365
    birth = timezone.localdate() - timedelta(days=int(age * 365.25) + offset)
    facts = {key: _number(value) for key, value in row.items()}
    return PatientRow(
        line=index + 1,
        mrn=mrn,
        given_name=_pick(_GIVEN_F, mrn + "g"),
        family_name=_pick(_FAMILY, mrn + "f"),
        birth_date=birth,
        sex=Patient.Sex.FEMALE,
        clinical_facts={"dataset": "GBSG2", "age_at_baseline": age, **facts},
        synthetic_name=True,
    )


BUILTIN_SOURCES: dict[str, BuiltinSource] = {
    "gbsg2": BuiltinSource(
        key="gbsg2",
        label="GBSG2 breast-cancer trial (686 patients)",
        description=(
            "German Breast Cancer Study Group 2: node-positive breast cancer, hormone therapy "
            "yes/no, recurrence-free survival. Trial records carry no names; synthetic names "
            "are given."
        ),
        path=settings.BASE_DIR / "data" / "clinical" / "gbsg2.csv",
        delimiter=";",
        to_patient=_gbsg2_row,
    ),
}


def builtin_rows(source: BuiltinSource) -> Iterator[PatientRow | RowError]:
    """Rows of a built-in data set as patients (1-based data rows)."""
    with source.path.open(newline="", encoding="utf-8") as handle:
        for index, row in enumerate(csv.DictReader(handle, delimiter=source.delimiter), start=1):
            try:
                yield source.to_patient(index, row)
            except (KeyError, ValueError) as exc:
                yield RowError(line=index + 1, message=f"could not read the row ({exc})")


class CsvRejected(ValueError):
    """The uploaded file as a whole cannot be imported; the message says why."""


def size_problem(size: int) -> str:
    """A message when an upload of ``size`` bytes is over the import limit, else ""."""
    if size <= MAX_IMPORT_BYTES:
        return ""
    return f"The file is {size / 1e6:.1f} MB; the limit is {MAX_IMPORT_BYTES / 1e6:.0f} MB."


def csv_check_header(content: bytes) -> list[str]:
    """Validate an uploaded patient CSV before anything is queued; returns its columns."""
    if not content.strip():
        raise CsvRejected("The file is empty.")
    if problem := size_problem(len(content)):
        raise CsvRejected(problem)
    if b"\x00" in content[:4096]:
        raise CsvRejected("This is not a text CSV file (it contains binary data).")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvRejected(
            f"The file is not UTF-8 text (first bad byte at position {exc.start})."
        ) from None
    header = next(csv.reader(io.StringIO(text)), [])
    columns = [c.strip().lower() for c in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CsvRejected(
            "The header row is missing the column(s) "
            + ", ".join(missing)
            + ". Required: "
            + ", ".join(REQUIRED_COLUMNS)
            + "; other columns are kept as "
            "clinical facts."
        )
    if len(set(columns)) != len(columns):
        raise CsvRejected("The header row names a column twice.")
    rows = text.count("\n")
    if rows > MAX_IMPORT_ROWS + 1:
        raise CsvRejected(f"The file has about {rows} rows; the limit is {MAX_IMPORT_ROWS}.")
    return columns


_SEX = {
    "f": "female",
    "female": "female",
    "m": "male",
    "male": "male",
    "other": "other",
    "o": "other",
    "unknown": "unknown",
    "u": "unknown",
    "": "unknown",
}


def csv_rows(content: bytes) -> Iterator[PatientRow | RowError]:
    """Rows of an uploaded CSV (already header-checked), each a patient or a row error."""
    text = content.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
    today = timezone.localdate()
    for row in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in row.items() if k is not None}
        problems = []
        mrn = values.get("mrn", "")
        if not mrn:
            problems.append("MRN is empty")
        elif len(mrn) > 32:
            problems.append("MRN is longer than 32 characters")
        for name in ("given_name", "family_name"):
            if not values.get(name):
                problems.append(f"{name.replace('_', ' ')} is empty")
            elif len(values[name]) > 100:
                problems.append(f"{name.replace('_', ' ')} is longer than 100 characters")
        birth = None
        try:
            birth = date.fromisoformat(values.get("birth_date", ""))
        except ValueError:
            problems.append(f"birth date {values.get('birth_date')!r} is not YYYY-MM-DD")
        else:
            if birth > today:
                problems.append("birth date is in the future")
            elif birth.year < today.year - 130:
                problems.append("birth date is more than 130 years ago")
        sex = _SEX.get(values.get("sex", "").lower())
        if sex is None:
            problems.append(f"sex {values.get('sex')!r} is not one of female, male, other, unknown")
        if problems:
            yield RowError(line=line, message="; ".join(problems))
            continue
        facts = {k: _number(v) for k, v in values.items() if k not in REQUIRED_COLUMNS and v}
        yield PatientRow(
            line=line,
            mrn=mrn,
            given_name=values["given_name"],
            family_name=values["family_name"],
            birth_date=birth,
            sex=sex,
            clinical_facts=facts,
        )
