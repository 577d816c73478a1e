"""DICOM PS3.15 Annex E Table E.1-1 (Basic Application Level Confidentiality Profile), as data."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE_PATH = Path(__file__).with_name("data") / "dicom_ps3.15_table_e1-1_2025b.json"
_TAG_PATTERN = re.compile(r"^\(([0-9A-Fx]{4}),([0-9A-Fx]{4})\)$", re.IGNORECASE)


@dataclass(frozen=True)
class ProfileEntry:
    """One row of Table E.1-1: the attribute's name and its Basic Profile action code."""

    name: str
    action: str  # e.g. "X", "Z", "D", "U", "X/Z/D" (PS3.15 E.1.1 legend)


@dataclass(frozen=True)
class _Pattern:
    """A row whose tag has 'xx' repeating-group wildcards, as mask/value on the 32-bit tag."""

    mask: int
    value: int
    entry: ProfileEntry


class ConfidentialityProfile:
    """Look up the Basic Profile action for any tag, including repeating groups (50xx, 60xx)."""

    def __init__(self, rows: list[dict[str, str]]) -> None:
        self._exact: dict[int, ProfileEntry] = {}
        self._patterns: list[_Pattern] = []
        self.private: ProfileEntry | None = None
        for row in rows:
            if "IS ODD" in row["tag"].upper():
                # The row "(gggg,eeee) where gggg is odd": all private attributes (PS3.5 7.8).
                self.private = ProfileEntry(name=row["name"], action=row["basicProfile"])
                continue
            match = _TAG_PATTERN.match(row["tag"].strip())
            if match is None:
                raise ValueError(f"unreadable tag in Table E.1-1: {row['tag']!r}")
            hex_digits = (match.group(1) + match.group(2)).upper()
            entry = ProfileEntry(name=row["name"], action=row["basicProfile"])
            if "X" not in hex_digits:
                self._exact[int(hex_digits, 16)] = entry
                continue
            mask = int("".join("0" if c == "X" else "F" for c in hex_digits), 16)
            value = int(hex_digits.replace("X", "0"), 16)
            self._patterns.append(_Pattern(mask, value, entry))

    def __len__(self) -> int:
        return len(self._exact) + len(self._patterns) + (self.private is not None)

    def entry(self, tag: int) -> ProfileEntry | None:
        """Return the Table E.1-1 row for `tag`, or None if the profile does not list it."""
        found = self._exact.get(int(tag))
        if found is not None:
            return found
        if (int(tag) >> 16) % 2 == 1:
            return self.private
        for pattern in self._patterns:
            # PS3.5 7.6: repeating groups are the even groups of the range (50xx, 60xx).
            if int(tag) & pattern.mask == pattern.value and (int(tag) >> 16) % 2 == 0:
                return pattern.entry
        return None

    def actions(self, tag: int) -> frozenset[str]:
        """Return the set of permitted action codes for `tag` (empty when not listed)."""
        entry = self.entry(tag)
        if entry is None:
            return frozenset()
        return frozenset(code.rstrip("*") for code in entry.action.split("/"))


@cache
def basic_profile() -> ConfidentialityProfile:
    """Return Table E.1-1 as shipped in diagnosis/imaging/data (parsed once per process)."""
    rows = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    return ConfidentialityProfile(rows)
