"""Readers for PhysioNet WFDB files (format 212 signals, MIT annotation files): the tests
check beat detection against the MIT-BIH Arrhythmia Database's reference annotations with them.
Pure numpy; no Django."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: MIT annotation codes (PhysioNet ecgcodes.h) to their mnemonics.
MIT_CODES: dict[int, str] = {
    0: "!0", 1: "N", 2: "L", 3: "R", 4: "a", 5: "V", 6: "F", 7: "J", 8: "A", 9: "S", 10: "E",
    11: "j", 12: "/", 13: "Q", 14: "~", 16: "|", 18: "s", 19: "T", 20: "*", 21: "D", 22: '"',
    23: "=", 24: "p", 25: "B", 26: "^", 27: "t", 28: "+", 29: "u", 30: "?", 31: "!", 32: "[",
    33: "]", 34: "e", 35: "n", 36: "@", 37: "x", 38: "f", 39: "(", 40: ")", 41: "r",
}  # fmt: skip
#: Codes that denote a beat (ecgcodes.h isqrs(): N L R a V F J A S E j / Q e n f r B ?).
MIT_BEAT_CODES = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 25, 30, 34, 35, 38, 41})
_SKIP, _NUM, _SUB, _CHN, _AUX = 59, 60, 61, 62, 63


@dataclass(frozen=True)
class MitRecord:
    """A WFDB record: ``signals`` in physical units (mV), one column per signal."""

    name: str
    fs: float
    signals: NDArray[np.float64]
    signal_names: tuple[str, ...]
    units: tuple[str, ...]

    def signal(self, name: str) -> NDArray[np.float64]:
        """One signal by its header description (e.g. 'MLII')."""
        return self.signals[:, self.signal_names.index(name)]

    def to_dict(self) -> dict[str, Any]:
        """Metadata only (the samples are too large for JSON)."""
        return {
            "name": self.name,
            "fs": self.fs,
            "n_samples": int(self.signals.shape[0]),
            "signal_names": list(self.signal_names),
            "units": list(self.units),
        }


@dataclass(frozen=True)
class MitAnnotations:
    """Annotations: sample index, mnemonic and numeric code of each."""

    samples: NDArray[np.int64]
    symbols: tuple[str, ...]
    codes: NDArray[np.int64]

    def beats(self) -> NDArray[np.int64]:
        """Sample indices of the beat annotations only (rhythm, noise etc. dropped)."""
        return self.samples[np.isin(self.codes, list(MIT_BEAT_CODES))]

    def counts(self) -> dict[str, int]:
        """Count of each annotation mnemonic."""
        out: dict[str, int] = {}
        for s in self.symbols:
            out[s] = out.get(s, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"samples": self.samples.tolist(), "symbols": list(self.symbols)}


def read_mit_record(header_path: str | Path) -> MitRecord:
    """Read a single-segment WFDB record whose signals are in format 212 (e.g. MIT-BIH), verifying
    each signal's initial value and checksum from the header."""
    hea = Path(header_path)
    lines = [ln.strip() for ln in hea.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    rec = lines[0].split()
    name, n_sig = rec[0], int(rec[1])
    fs = float(rec[2].split("/")[0]) if len(rec) > 2 else 250.0
    n_samples = int(rec[3]) if len(rec) > 3 else None
    specs = [ln.split() for ln in lines[1 : 1 + n_sig]]
    files = {s[0] for s in specs}
    if len(files) != 1 or any(s[1].split("x")[0].split(":")[0] != "212" for s in specs):
        raise ValueError("only single-file format-212 records are supported")
    raw = np.fromfile(hea.parent / specs[0][0], dtype=np.uint8)
    raw = raw[: raw.size - raw.size % 3].reshape(-1, 3).astype(np.int32)
    # Format 212: each 3 bytes hold two 12-bit two's-complement samples; the low 8 bits of the
    # first are byte 0 and its high 4 bits the low nibble of byte 1; the second's high 4 bits are
    # the high nibble of byte 1 and its low 8 bits byte 2 (WFDB signal(5)).
    first = raw[:, 0] | ((raw[:, 1] & 0x0F) << 8)
    second = raw[:, 2] | ((raw[:, 1] & 0xF0) << 4)
    samples = np.empty(first.size * 2, dtype=np.int32)
    samples[0::2], samples[1::2] = first, second
    samples = np.where(samples >= 2048, samples - 4096, samples)
    n_frames = samples.size // n_sig if n_samples is None else n_samples
    digital = samples[: n_frames * n_sig].reshape(n_frames, n_sig)
    out = np.empty(digital.shape, dtype=np.float64)
    names, units = [], []
    for j, spec in enumerate(specs):
        gain_field = spec[2] if len(spec) > 2 else "200"
        unit = gain_field.split("/")[1] if "/" in gain_field else "mV"
        gain = float(gain_field.split("/")[0].split("(")[0]) or 200.0
        baseline_txt = gain_field.split("(")[1].split(")")[0] if "(" in gain_field else None
        adc_zero = int(spec[4]) if len(spec) > 4 else 0
        baseline = int(baseline_txt) if baseline_txt is not None else adc_zero
        if len(spec) > 5 and int(spec[5]) != digital[0, j]:
            raise ValueError(f"{name}: signal {j} initial value mismatch (corrupt file?)")
        if len(spec) > 6:
            checksum = int(digital[:, j].astype(np.int64).sum()) & 0xFFFF
            if checksum >= 0x8000:
                checksum -= 0x10000
            if checksum != int(spec[6]):
                raise ValueError(f"{name}: signal {j} checksum mismatch (corrupt file?)")
        out[:, j] = (digital[:, j] - baseline) / gain
        names.append(" ".join(spec[8:]) if len(spec) > 8 else f"sig{j}")
        units.append(unit)
    return MitRecord(name, fs, out, tuple(names), tuple(units))


def read_mit_annotations(path: str | Path) -> MitAnnotations:
    """Read a WFDB annotation file in MIT format (e.g. MIT-BIH ``.atr``)."""
    data = np.fromfile(Path(path), dtype="<u2").tolist()
    samples: list[int] = []
    codes: list[int] = []
    t = 0
    i = 0
    # Each 16-bit little-endian word: annotation code in the top 6 bits, time increment (or a
    # pseudo-annotation's argument) in the low 10 (WFDB annot(5)).
    while i < len(data):
        word = data[i]
        code, arg = word >> 10, word & 0x3FF
        i += 1
        if code == 0 and arg == 0:
            break  # end of file
        if code == _SKIP:
            # Long interval: a 32-bit value follows, high 16 bits first (PDP-11 order).
            interval = (data[i] << 16) | data[i + 1]
            if interval >= 1 << 31:
                interval -= 1 << 32
            t += interval
            i += 2
        elif code == _AUX:
            i += (arg + 1) // 2  # auxiliary string, padded to an even byte count
        elif code in (_NUM, _SUB, _CHN):
            pass  # modify the preceding annotation's fields; not needed here
        else:
            t += arg
            samples.append(t)
            codes.append(code)
    codes_arr = np.asarray(codes, dtype=np.int64)
    return MitAnnotations(
        np.asarray(samples, dtype=np.int64),
        tuple(MIT_CODES.get(c, f"?{c}") for c in codes),
        codes_arr,
    )
