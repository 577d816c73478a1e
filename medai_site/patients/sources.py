"""Where demo and bulk patients come from: built-in trial data sets and uploaded CSV files.

A built-in source is a declaration (file, separator, how a row becomes a patient), so another
data set is a new entry here, not new code.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from medai_site.core.uploads import upload_size_problem
from medai_site.patients.models import Patient

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 20_000
# The csv module's default field limit, enforced here: the module's own limit is process-wide,
# and loading an ARFF file through scipy (the GBSG2 trial) raises it for the whole process.
MAX_CELL_CHARS = 131_072
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


def csv_check_header(content: bytes) -> list[str]:
    """Validate an uploaded patient CSV before anything is queued; returns its columns."""
    if not content.strip():
        raise CsvRejected("The file is empty.")
    if problem := upload_size_problem(len(content), cap=MAX_IMPORT_BYTES):
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
    # The csv module refuses some files only part-way (a field over its size limit, a stray
    # NUL): find that now, on the form, rather than as an opaque failure of the import job.
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            if any(len(cell) > MAX_CELL_CHARS for cell in row):
                raise csv.Error(f"a cell is longer than {MAX_CELL_CHARS} characters")
    except csv.Error as exc:
        raise CsvRejected(
            f"Line {reader.line_num} of the file cannot be read as CSV ({exc}); "
            "check its quotes and separators."
        ) from None
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


# Numbers as the CSV writes them: ASCII digits only. Python's float() would also read "nan",
# "inf", "1_000" and other scripts' digits ("١٢٣"), none of which a clinical fact should
# silently become.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NON_FINITE = {"nan", "inf", "infinity"}
# Beyond 2**53 an integer no longer survives a round trip through a JSON number (a double).
MAX_EXACT_INTEGER = 2**53
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# PostgreSQL cannot store NUL in text or JSON; other C0 controls are never meant in a cell.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class CellRejected(ValueError):
    """One cell cannot be imported; the message names the value and says why."""


def cell_text(column: str, value: str) -> str:
    """The cell unchanged; CellRejected when it holds a control character."""
    if match := _CONTROL.search(value):
        raise CellRejected(f"{column} contains a control character (U+{ord(match.group()):04X})")
    return value


def fact_value(column: str, value: str) -> int | float | str:
    """A clinical-fact cell: an int or a finite float when written as an ASCII number (ints
    only while exact in JSON), otherwise the text. CellRejected for values that look like
    numbers but cannot be kept faithfully (nan, infinities, overflow, other scripts'
    digits) or that hold control characters."""
    cell_text(column, value)
    shown = value if len(value) <= 40 else value[:37] + "..."
    if value.lower().lstrip("+-") in _NON_FINITE:
        raise CellRejected(
            f"{column} {shown!r} is not a number (leave the cell empty if the value is missing)"
        )
    if _INTEGER.fullmatch(value):
        digits = value.lstrip("+-")
        if len(digits) > 16 or int(value) > MAX_EXACT_INTEGER or -int(value) > MAX_EXACT_INTEGER:
            raise CellRejected(
                f"{column} {shown!r} is too large to keep exactly "
                f"(whole numbers up to {MAX_EXACT_INTEGER:,} in size)"
            )
        return int(value)
    if _NUMBER.fullmatch(value):
        number = float(value)
        if not math.isfinite(number):
            raise CellRejected(f"{column} {shown!r} is too large a number")
        if number.is_integer() and abs(number) <= MAX_EXACT_INTEGER:
            return int(number)
        return number
    if any(ch.isdigit() and not ch.isascii() for ch in value):
        try:
            float(value)
        except ValueError:
            return value  # text that merely contains such digits
        raise CellRejected(f"{column} {shown!r} is written with non-ASCII digits; use 0-9")
    return value


def birth_date_value(value: str, *, today: date) -> date:
    """The birth date of a YYYY-MM-DD cell; CellRejected with the reason otherwise."""
    shown = value if len(value) <= 40 else value[:37] + "..."
    if not _ISO_DATE.fullmatch(value):
        raise CellRejected(f"birth_date {shown!r} is not YYYY-MM-DD")
    try:
        birth = date.fromisoformat(value)
    except ValueError as exc:
        raise CellRejected(f"birth_date {shown!r} is not a valid YYYY-MM-DD date ({exc})") from None
    if birth > today:
        raise CellRejected(f"birth_date {shown!r} is in the future")
    if birth.year < today.year - 130:
        raise CellRejected(f"birth_date {shown!r} is more than 130 years ago")
    return birth


def csv_rows(content: bytes) -> Iterator[PatientRow | RowError]:
    """Rows of an uploaded CSV (already header-checked), each a patient or a row error whose
    message names every bad cell's column and why."""
    text = content.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
    width = len(reader.fieldnames)
    today = timezone.localdate()
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # csv_check_header found none; kept so a file changed on disk still reports.
            yield RowError(
                line=reader.line_num,
                message=f"the file cannot be read as CSV from here on ({exc})",
            )
            return
        line = reader.line_num
        if any(len(cell) > MAX_CELL_CHARS for cell in row.values() if isinstance(cell, str)):
            yield RowError(
                line=line,
                message=f"the file cannot be read as CSV from here on (a cell is longer than "
                f"{MAX_CELL_CHARS} characters)",
            )
            return
        problems = []
        if None in row:
            problems.append(
                f"the row has {width + len(row[None])} cells but the header has {width} columns"
            )
        values = {k: (v or "").strip() for k, v in row.items() if k is not None}
        for name in REQUIRED_COLUMNS:
            try:
                cell_text(name, values.get(name, ""))
            except CellRejected as exc:
                problems.append(str(exc))
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
            birth = birth_date_value(values.get("birth_date", ""), today=today)
        except CellRejected as exc:
            problems.append(str(exc))
        sex = _SEX.get(values.get("sex", "").lower())
        if sex is None:
            problems.append(f"sex {values.get('sex')!r} is not one of female, male, other, unknown")
        facts: dict[str, Any] = {}
        for column, value in values.items():
            if column in REQUIRED_COLUMNS or not value:
                continue
            try:
                facts[column] = fact_value(column, value)
            except CellRejected as exc:
                problems.append(str(exc))
        if problems or birth is None or sex is None:  # each None has a problem
            yield RowError(line=line, message="; ".join(problems))
            continue
        yield PatientRow(
            line=line,
            mrn=mrn,
            given_name=values["given_name"],
            family_name=values["family_name"],
            birth_date=birth,
            sex=sex,
            clinical_facts=facts,
        )


@dataclass
class ImportRows:
    """An import's source, opened: its label for the record, its rows as they are read, and
    how many rows to expect (for progress)."""

    label: str
    rows: Iterator[PatientRow | RowError]
    expected: int


def import_rows_open(
    *, source: str, content: bytes, original_name: str, limit: int | None
) -> ImportRows:
    """The rows of an import from ``source`` ("csv" with the uploaded ``content``, else a
    built-in source's key), expecting at most ``limit`` rows when it is set."""
    if source == "csv":
        label = f"CSV upload {original_name}".strip()
        rows = csv_rows(content)
        expected = max(1, content.count(b"\n"))
    else:
        builtin = BUILTIN_SOURCES[source]
        label = builtin.label.split(" (")[0]
        rows = builtin_rows(builtin)
        expected = max(1, sum(1 for _ in builtin.path.open(encoding="utf-8")) - 1)
    if limit:
        expected = min(expected, limit)
    return ImportRows(label=label, rows=rows, expected=expected)


def import_rows_validate(
    *, opened: ImportRows, limit: int | None, on_row: Callable[[int], None]
) -> tuple[list[PatientRow], list[dict[str, Any]]]:
    """The valid rows (the first of each MRN, at most ``limit`` when set) and one error per
    rejected line; ``on_row(count)`` is told every 25 rows read."""
    rows: list[PatientRow] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for count, item in enumerate(opened.rows, start=1):
        if isinstance(item, RowError):
            errors.append({"line": item.line, "message": item.message})
        elif item.mrn in seen:
            errors.append(
                {"line": item.line, "message": f"MRN {item.mrn} appears twice in the file"}
            )
        else:
            seen.add(item.mrn)
            rows.append(item)
        if limit and len(rows) >= limit:
            break
        if count % 25 == 0:
            on_row(count)
    return rows, errors
