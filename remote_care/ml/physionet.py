"""PhysioNet/CinC Challenge 2012 (set A) reader, and live MedAI vitals in the same shape.

Each stay file is ``Time,Parameter,Value`` rows (``HH:MM`` since ICU admission). The first rows at
00:00 are the static descriptors (RecordID, Age, Gender, Height, ICUType, Weight); ``-1`` means not
measured. Weight also recurs later as a time series. ``Outcomes-a.txt`` gives SAPS-I, SOFA, length
of stay and in-hospital death. Data: Silva et al., "Predicting in-hospital mortality of ICU
patients: the PhysioNet/Computing in Cardiology Challenge 2012", CinC 2012; ODC-BY 1.0.

The tarball is read in place with ``tarfile`` (nothing is extracted); parsed stays can be cached
as one ``.npz`` under a caller-given folder.

Live MedAI readings (``heart_rate``, ``spo2``, ... with timestamps) are converted into the same
:class:`Stay` shape by :func:`stay_from_vitals`, so one feature builder serves both.
"""

from __future__ import annotations

import hashlib
import math
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ACVPU_TO_GCS",
    "GCS_TO_ACVPU",
    "PLAUSIBLE",
    "STATIC_VARIABLES",
    "TIME_SERIES_VARIABLES",
    "Split",
    "Stay",
    "VITALS_TO_PHYSIONET",
    "VitalsReading",
    "load_outcomes",
    "load_set_a",
    "parse_stay",
    "restrict_stay",
    "VITALS_TABLE_COLUMNS",
    "stay_from_table",
    "stay_from_vitals",
    "stratified_split",
    "vitals_from_stay",
]

#: Static descriptors recorded once at 00:00 (Weight recurs later as a time series too).
STATIC_VARIABLES: tuple[str, ...] = ("Age", "Gender", "Height", "ICUType", "Weight")

#: The 37 time-series variables of the challenge, in a fixed order (their column index).
TIME_SERIES_VARIABLES: tuple[str, ...] = (
    "ALP",
    "ALT",
    "AST",
    "Albumin",
    "BUN",
    "Bilirubin",
    "Cholesterol",
    "Creatinine",
    "DiasABP",
    "FiO2",
    "GCS",
    "Glucose",
    "HCO3",
    "HCT",
    "HR",
    "K",
    "Lactate",
    "MAP",
    "MechVent",
    "Mg",
    "NIDiasABP",
    "NIMAP",
    "NISysABP",
    "Na",
    "PaCO2",
    "PaO2",
    "Platelets",
    "RespRate",
    "SaO2",
    "SysABP",
    "Temp",
    "TroponinI",
    "TroponinT",
    "Urine",
    "WBC",
    "Weight",
    "pH",
)
_VAR_INDEX = {v: i for i, v in enumerate(TIME_SERIES_VARIABLES)}

#: Physiologically possible ranges; values outside are charting/transcription errors in the raw
#: data (e.g. Temp 0 or -17.8, HR 0 with a recorded pulse minutes later, pH 735 for 7.35) and are
#: dropped rather than fed to a model. Bounds are generous: only impossible values go.
PLAUSIBLE: Mapping[str, tuple[float, float]] = {
    "ALP": (1, 5000),
    "ALT": (1, 15000),
    "AST": (1, 40000),
    "Albumin": (0.5, 7),
    "BUN": (0.5, 300),
    "Bilirubin": (0.05, 60),
    "Cholesterol": (20, 800),
    "Creatinine": (0.05, 30),
    "DiasABP": (5, 250),
    "FiO2": (0.21, 1.0),
    "GCS": (3, 15),
    "Glucose": (10, 2000),
    "HCO3": (2, 60),
    "HCT": (5, 70),
    "HR": (10, 300),
    "K": (1, 12),
    "Lactate": (0.1, 35),
    "MAP": (10, 300),
    "MechVent": (0.5, 1.5),
    "Mg": (0.2, 10),
    "NIDiasABP": (5, 250),
    "NIMAP": (10, 300),
    "NISysABP": (20, 300),
    "Na": (90, 200),
    "PaCO2": (5, 150),
    "PaO2": (10, 700),
    "Platelets": (1, 2000),
    "RespRate": (1, 100),
    "SaO2": (20, 100),
    "SysABP": (20, 300),
    "Temp": (25, 45),
    "TroponinI": (0.01, 100),
    "TroponinT": (0.005, 50),
    "Urine": (0, 3000),
    "WBC": (0.1, 300),
    "Weight": (20, 300),
    "pH": (6.5, 8.0),
}

#: ACVPU level -> Glasgow Coma Scale value, used to put a MedAI consciousness reading on the
#: model's GCS channel. Representative GCS per AVPU level (Kelly, Upex & Bateman, Ann Emerg Med
#: 2004: A ~15, V ~13, P ~8, U ~3-6); new confusion is a verbal score of 4, i.e. GCS 14.
ACVPU_TO_GCS: Mapping[str, float] = {"A": 15.0, "C": 14.0, "V": 12.0, "P": 8.0, "U": 3.0}


@dataclass(frozen=True)
class Stay:
    """One ICU stay (or one live patient's window): static descriptors and irregular events.

    ``times`` are minutes since the start, ``var`` indexes :data:`TIME_SERIES_VARIABLES`; events
    are sorted by time. ``static`` maps each of :data:`STATIC_VARIABLES` to a value or NaN.
    Outcome fields are None for live patients.
    """

    record_id: int
    static: Mapping[str, float]
    times: np.ndarray  # float32 minutes, shape (n,)
    var: np.ndarray  # int16 variable index, shape (n,)
    values: np.ndarray  # float32, shape (n,)
    death: int | None = None
    saps1: float | None = None
    sofa: float | None = None
    length_of_stay: float | None = None

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(minutes, values) of one variable, in time order."""
        sel = self.var == _VAR_INDEX[name]
        return self.times[sel], self.values[sel]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (events as [minute, variable, value] triples)."""
        return {
            "record_id": self.record_id,
            "static": {k: (None if math.isnan(v) else v) for k, v in self.static.items()},
            "events": [
                [float(t), TIME_SERIES_VARIABLES[int(v)], float(x)]
                for t, v, x in zip(self.times, self.var, self.values)
            ],
            "death": self.death,
            "saps1": self.saps1,
        }


def _minutes(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return float(int(h) * 60 + int(m))


def parse_stay(text: str, outcome: Mapping[str, float] | None = None) -> Stay:
    """Parse one ``Time,Parameter,Value`` file; implausible and ``-1`` values are dropped."""
    static: dict[str, float] = {k: math.nan for k in STATIC_VARIABLES}
    record_id = -1
    times: list[float] = []
    var: list[int] = []
    values: list[float] = []
    seen_static: set[str] = set()
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        t_s, name, v_s = line.split(",")
        t, v = _minutes(t_s), float(v_s)
        if name == "RecordID":
            record_id = int(v)
            continue
        # The descriptors are the first 00:00 rows; a later Weight row is a measurement.
        if name in STATIC_VARIABLES and t == 0 and name not in seen_static:
            seen_static.add(name)
            if v >= 0 and not (name in PLAUSIBLE and not _plausible(name, v)):
                static[name] = v
            if name != "Weight":
                continue
            if v < 0:
                continue
        if name not in _VAR_INDEX or v < 0 or not _plausible(name, v):
            continue
        times.append(t)
        var.append(_VAR_INDEX[name])
        values.append(v)
    if not math.isnan(static["Height"]) and not 100 <= static["Height"] <= 230:
        static["Height"] = math.nan  # heights like 13 cm or 431 cm are unit/entry errors
    order = np.argsort(np.asarray(times, dtype=np.float32), kind="stable")
    o = outcome or {}
    death = o.get("In-hospital_death")
    saps = o.get("SAPS-I")
    sofa = o.get("SOFA")
    return Stay(
        record_id=record_id,
        static=static,
        times=np.asarray(times, dtype=np.float32)[order],
        var=np.asarray(var, dtype=np.int16)[order],
        values=np.asarray(values, dtype=np.float32)[order],
        death=None if death is None else int(death),
        saps1=None if saps is None or saps < 0 else float(saps),
        sofa=None if sofa is None or sofa < 0 else float(sofa),
        length_of_stay=o.get("Length_of_stay"),
    )


def _plausible(name: str, v: float) -> bool:
    lo, hi = PLAUSIBLE[name]
    return lo <= v <= hi


def load_outcomes(path: str | Path) -> dict[int, dict[str, float]]:
    """``Outcomes-a.txt`` as {RecordID: {column: value}} (``-1`` kept; callers decide)."""
    lines = Path(path).read_text().splitlines()
    header = lines[0].split(",")
    out: dict[int, dict[str, float]] = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        row = dict(zip(header, (float(x) for x in line.split(","))))
        out[int(row["RecordID"])] = row
    return out


def _cache_key(tar_path: Path, outcomes_path: Path) -> str:
    h = hashlib.sha256()
    for p in (tar_path, outcomes_path):
        st = p.stat()
        h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(b"v1")  # bump when parsing rules change
    return h.hexdigest()[:16]


def load_set_a(
    tar_path: str | Path,
    outcomes_path: str | Path,
    *,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
) -> list[Stay]:
    """All stays of set A with outcomes, sorted by RecordID.

    ``limit`` keeps the first N stays by RecordID (for quick tests). With ``cache_dir`` the parsed
    arrays are stored there as one ``.npz`` keyed by the input files' size and mtime.
    """
    tar_path, outcomes_path = Path(tar_path), Path(outcomes_path)
    outcomes = load_outcomes(outcomes_path)
    cache: Path | None = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"physionet2012-a-{_cache_key(tar_path, outcomes_path)}.npz"
        if cache.exists():
            stays = _read_cache(cache, outcomes)
            return stays[:limit] if limit else stays
    texts: dict[int, str] = {}
    # Stream the members in archive order: random access into a gzip stream re-decompresses
    # from the start for every member (minutes instead of seconds).
    with tarfile.open(tar_path, "r|gz") as tar:
        for m in tar:
            if not (m.isfile() and m.name.endswith(".txt")):
                continue
            f = tar.extractfile(m)
            if f is not None:
                texts[int(Path(m.name).stem)] = f.read().decode("ascii")
    rids = sorted(texts)
    if limit and cache is None:
        rids = rids[:limit]
    stays = [parse_stay(texts[r], outcomes.get(r)) for r in rids]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        _write_cache(cache, stays)
    return stays[:limit] if limit else stays


def _write_cache(path: Path, stays: Sequence[Stay]) -> None:
    lengths = np.array([len(s.times) for s in stays], dtype=np.int64)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        record_id=np.array([s.record_id for s in stays], dtype=np.int64),
        static=np.array([[s.static[k] for k in STATIC_VARIABLES] for s in stays], dtype=np.float64),
        lengths=lengths,
        times=np.concatenate([s.times for s in stays]),
        var=np.concatenate([s.var for s in stays]),
        values=np.concatenate([s.values for s in stays]),
    )
    tmp.replace(path)


def _read_cache(path: Path, outcomes: Mapping[int, Mapping[str, float]]) -> list[Stay]:
    with np.load(path) as npz:
        # NpzFile decompresses on every item access: read each array once.
        z = {k: npz[k] for k in npz.files}
    bounds = np.concatenate([[0], np.cumsum(z["lengths"])])
    stays = []
    for i, rid in enumerate(z["record_id"]):
        a, b = bounds[i], bounds[i + 1]
        o = outcomes.get(int(rid), {})
        death, saps, sofa = o.get("In-hospital_death"), o.get("SAPS-I"), o.get("SOFA")
        stays.append(
            Stay(
                record_id=int(rid),
                static={k: float(z["static"][i, j]) for j, k in enumerate(STATIC_VARIABLES)},
                times=z["times"][a:b],
                var=z["var"][a:b],
                values=z["values"][a:b],
                death=None if death is None else int(death),
                saps1=None if saps is None or saps < 0 else float(saps),
                sofa=None if sofa is None or sofa < 0 else float(sofa),
                length_of_stay=o.get("Length_of_stay"),
            )
        )
    return stays


# --------------------------------------------------------------------------------------------
# Live MedAI vitals
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VitalsReading:
    """One MedAI vital-signs set (the fields of ``remote_care.VitalSigns``); None = not taken."""

    taken_at: datetime
    heart_rate: float | None = None
    spo2: float | None = None
    respiratory_rate: float | None = None
    temperature: float | None = None
    systolic_bp: float | None = None
    diastolic_bp: float | None = None
    consciousness: str | None = None  # ACVPU letter; "" means not assessed
    on_oxygen: bool | None = None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> VitalsReading:
        """Build from a dict with the same keys (e.g. a ``.values()`` row); extra keys ignored."""
        keys = cls.__dataclass_fields__.keys()
        return cls(**{k: row[k] for k in keys if k in row})


#: MedAI vital -> the PhysioNet variable it is charted as. SpO2 goes on SaO2 (the only oxygen
#: saturation in the set; arterial, from blood gases) and cuff pressures on the non-invasive BP
#: channels, which is what a home device measures.
VITALS_TO_PHYSIONET: Mapping[str, str] = {
    "heart_rate": "HR",
    "spo2": "SaO2",
    "respiratory_rate": "RespRate",
    "temperature": "Temp",
    "systolic_bp": "NISysABP",
    "diastolic_bp": "NIDiasABP",
}


#: GCS back to the ACVPU letter a home device reports (the inverse of ACVPU_TO_GCS's bands).
GCS_TO_ACVPU: tuple[tuple[float, str], ...] = ((15, "A"), (14, "C"), (9, "V"), (4, "P"), (0, "U"))
_PHYSIONET_TO_VITALS = {"NISysABP": "systolic_bp", "NIDiasABP": "diastolic_bp"} | {
    pn: name for name, pn in VITALS_TO_PHYSIONET.items()
}
_PHYSIONET_TO_VITALS |= {"SysABP": "systolic_bp", "DiasABP": "diastolic_bp"}


def vitals_from_stay(stay: Stay, origin: datetime) -> list[dict[str, Any]]:
    """A PhysioNet stay's vital signs as MedAI observation sets (one per charted minute, the
    clock starting at ``origin``): the inverse of :func:`stay_from_vitals`. Cuff pressures are
    preferred to invasive ones charted at the same minute; GCS becomes an ACVPU letter and
    charted ventilation supplemental oxygen."""
    sets: dict[float, dict[str, Any]] = {}
    for minute, var, value in zip(stay.times, stay.var, stay.values, strict=True):
        name = TIME_SERIES_VARIABLES[int(var)]
        row = sets.setdefault(float(minute), {})
        field_name = _PHYSIONET_TO_VITALS.get(name)
        if field_name is not None:
            if name in ("SysABP", "DiasABP") and field_name in row:
                continue  # the cuff value of this minute wins
            row[field_name] = float(value)
        elif name == "GCS":
            row["consciousness"] = next(letter for low, letter in GCS_TO_ACVPU if value >= low)
        elif name == "MechVent" and value > 0:
            row["on_oxygen"] = True
    return [
        {"taken_at": origin + timedelta(minutes=minute), **row}
        for minute, row in sorted(sets.items())
        if row
    ]


def stay_from_vitals(
    readings: Iterable[VitalsReading | Mapping[str, Any]],
    *,
    start: datetime | None = None,
    age: float | None = None,
    sex: str | None = None,
    record_id: int = 0,
) -> Stay:
    """A live patient's readings as a :class:`Stay` whose clock starts at ``start`` (default:
    the first reading). Readings before ``start`` are ignored; implausible values are dropped
    as for PhysioNet. ``on_oxygen`` True is charted as MechVent=1 (supplemental oxygen); False
    or None adds nothing, as an ICU chart has no row for 'not ventilated'. ``sex`` is "female"
    / "male" (anything else is unknown)."""
    rows = sorted(
        (r if isinstance(r, VitalsReading) else VitalsReading.from_mapping(r) for r in readings),
        key=lambda r: r.taken_at,
    )
    if start is None and rows:
        start = rows[0].taken_at
    times: list[float] = []
    var: list[int] = []
    values: list[float] = []

    def add(t: float, name: str, v: float) -> None:
        if _plausible(name, v):
            times.append(t)
            var.append(_VAR_INDEX[name])
            values.append(v)

    for r in rows:
        if start is None:
            break
        t = (r.taken_at - start).total_seconds() / 60.0
        if t < 0:
            continue
        for field_name, pn in VITALS_TO_PHYSIONET.items():
            v = getattr(r, field_name)
            if v is not None and math.isfinite(float(v)):
                add(t, pn, float(v))
        if r.consciousness:
            gcs = ACVPU_TO_GCS.get(str(r.consciousness).strip().upper())
            if gcs is not None:
                add(t, "GCS", gcs)
        if r.on_oxygen:
            add(t, "MechVent", 1.0)
    return Stay(
        record_id=record_id,
        static=_live_static(age, sex),
        times=np.asarray(times, dtype=np.float32),
        var=np.asarray(var, dtype=np.int16),
        values=np.asarray(values, dtype=np.float32),
    )


def _live_static(age: float | None, sex: str | None) -> dict[str, float]:
    static = {k: math.nan for k in STATIC_VARIABLES}
    if age is not None:
        static["Age"] = float(age)
    # PhysioNet codes Gender 0 = female, 1 = male.
    gender = {"female": 0.0, "f": 0.0, "male": 1.0, "m": 1.0}.get((sex or "").strip().lower())
    if gender is not None:
        static["Gender"] = gender
    return static


#: The columns of a vitals table (:func:`stay_from_table`), as PhysioNet variables: the six
#: measured vital signs (VITALS_TO_PHYSIONET's order), consciousness as GCS (ACVPU_TO_GCS) and
#: supplemental oxygen as MechVent = 1.
VITALS_TABLE_COLUMNS: tuple[str, ...] = (*VITALS_TO_PHYSIONET.values(), "GCS", "MechVent")
_TABLE_VAR = np.array([_VAR_INDEX[name] for name in VITALS_TABLE_COLUMNS], dtype=np.int16)
_TABLE_LOW = np.array([PLAUSIBLE[name][0] for name in VITALS_TABLE_COLUMNS], dtype=np.float64)
_TABLE_HIGH = np.array([PLAUSIBLE[name][1] for name in VITALS_TABLE_COLUMNS], dtype=np.float64)


def stay_from_table(
    minutes: np.ndarray,
    table: np.ndarray,
    *,
    age: float | None = None,
    sex: str | None = None,
    record_id: int = 0,
) -> Stay:
    """:func:`stay_from_vitals` for readings already in arrays (the risk sweep reads a batch
    of windows as one table): ``minutes`` in time order on any clock (the stay starts at the
    first) and ``table`` ``[n, 8]`` in :data:`VITALS_TABLE_COLUMNS` order, NaN where nothing
    was charted (oxygen: NaN unless on oxygen). The same events, in the same order."""
    t = np.asarray(minutes, dtype=np.float64)
    values = np.asarray(table, dtype=np.float64).reshape(t.size, len(VITALS_TABLE_COLUMNS))
    with np.errstate(invalid="ignore"):  # NaN compares False: not charted, dropped
        keep = (values >= _TABLE_LOW) & (values <= _TABLE_HIGH)
    rows, cols = np.nonzero(keep)  # row-major: reading by reading, columns in order
    start = t[0] if t.size else 0.0
    return Stay(
        record_id=record_id,
        static=_live_static(age, sex),
        times=(t[rows] - start).astype(np.float32),
        var=_TABLE_VAR[cols],
        values=values[rows, cols].astype(np.float32),
    )


@dataclass(frozen=True)
class Split:
    """Indices of a stratified train/validation/test split (into the list of stays)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seed: int
    fractions: tuple[float, float, float] = field(default=(0.6, 0.2, 0.2))

    def to_dict(self) -> dict[str, Any]:
        """Sizes and seed (for a metrics card)."""
        return {
            "seed": self.seed,
            "fractions": list(self.fractions),
            "n_train": int(len(self.train)),
            "n_val": int(len(self.val)),
            "n_test": int(len(self.test)),
        }


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    *,
    seed: int = 2012,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> Split:
    """Seeded split keeping the outcome rate equal in train, validation and test."""
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_tr = int(round(fractions[0] * len(idx)))
        n_va = int(round(fractions[1] * len(idx)))
        parts[0].extend(idx[:n_tr])
        parts[1].extend(idx[n_tr : n_tr + n_va])
        parts[2].extend(idx[n_tr + n_va :])
    return Split(*(np.sort(np.asarray(p, dtype=np.int64)) for p in parts), seed, fractions)


def restrict_stay(stay: Stay, variables: Iterable[str], static: Iterable[str]) -> Stay:
    """A copy of ``stay`` keeping only the named time-series variables and static descriptors
    (the others become missing): e.g. an ICU stay as a vitals-only device would see it."""
    keep_idx = [_VAR_INDEX[v] for v in variables]
    sel = np.isin(stay.var, keep_idx)
    keep_static = set(static)
    return Stay(
        record_id=stay.record_id,
        static={k: (v if k in keep_static else math.nan) for k, v in stay.static.items()},
        times=stay.times[sel],
        var=stay.var[sel],
        values=stay.values[sel],
        death=stay.death,
        saps1=stay.saps1,
        sofa=stay.sofa,
        length_of_stay=stay.length_of_stay,
    )
