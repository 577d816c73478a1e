"""Input contracts of imaging models and the metadata gate that checks a scan against one.

A contract says what a model version was trained to read (modality, SOP class, body part, view,
photometric interpretation, channels, minimum resolution). The gate compares what a scan's
header says with it before any pixel reaches the model and answers with a human reason, e.g.
"not scored: this model reads chest radiographs (CR/DX, chest); this is a CT of the head".

Only what the header actually states can refuse a scan: a missing BodyPartExamined or
ViewPosition on a CR is common (many departments never fill them) and is not a refusal by
itself, while a stated wrong modality, body part or view is. PNG/JPEG carry no such metadata,
so for them only channels and size are checked here; the learned out-of-distribution score
(diagnosis.ml.ood) has to carry them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from diagnosis.imaging.scan import ScanInfo

CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"
DX_PROCESSING_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1.1"

# Words for the reason a clinician reads; keys are DICOM Modality defined terms (PS3.3 C.7.3.1.1.1).
MODALITY_NAMES: dict[str, str] = {
    "CR": "a computed radiograph",
    "DX": "a digital radiograph",
    "CT": "a CT",
    "MR": "an MR image",
    "US": "an ultrasound image",
    "NM": "a nuclear medicine image",
    "PT": "a PET image",
    "XA": "an X-ray angiogram",
    "RF": "a fluoroscopy image",
    "MG": "a mammogram",
    "IO": "an intra-oral radiograph",
    "PX": "a panoramic dental radiograph",
    "OT": "a secondary capture",
    "SC": "a secondary capture",
    "ES": "an endoscopy image",
    "XC": "a photograph",
    "OP": "an ophthalmic photograph",
    "OPT": "an optical coherence tomogram",
    "SM": "a microscopy slide",
    "ECG": "an ECG",
    "SEG": "a segmentation",
    "SR": "a structured report",
    "RTIMAGE": "a radiotherapy image",
    "RTDOSE": "a radiotherapy dose",
}
# Vendors write several spellings for the same region; the contract's body parts are matched
# after this mapping (PS3.16 CID 4031 uses CHEST, vendors also send THORAX, LUNG, ...).
BODY_PART_SYNONYMS: dict[str, str] = {
    "THORAX": "CHEST",
    "LUNG": "CHEST",
    "LUNGS": "CHEST",
    "CHEST_PA": "CHEST",
    "CHEST_AP": "CHEST",
    "BRAIN": "HEAD",
    "SKULL": "HEAD",
    "CEREBRUM": "HEAD",
}
# Image Type values that mark a picture that is not a diagnostic view of the body part,
# whatever the modality (a CT scout, a derived screen capture of a report).
NON_DIAGNOSTIC_IMAGE_TYPES: frozenset[str] = frozenset({"LOCALIZER", "SCOUT", "REPORT"})


@dataclass(frozen=True)
class InputContract:
    """What a model version reads. Empty tuples mean "any" for that attribute.

    `description` names the inputs in a clinician's words ("chest radiographs"); `modalities`,
    `body_parts` and `views` use DICOM defined terms; `min_size` is (rows, cols).
    """

    description: str
    modalities: tuple[str, ...] = ()
    sop_classes: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    photometric: tuple[str, ...] = ()
    channels: int | None = None
    min_size: tuple[int, int] = (1, 1)
    collection: str = ""
    notes: str = ""

    def summary(self) -> str:
        """One phrase for a reason or a model card: "chest radiographs (CR/DX, chest)"."""
        detail = []
        if self.modalities:
            detail.append("/".join(self.modalities))
        if self.body_parts:
            detail.append(", ".join(p.lower() for p in self.body_parts))
        return f"{self.description} ({', '.join(detail)})" if detail else self.description

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (lists), as stored in an artifact and on a model version."""
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputContract:
        """Rebuild from `to_dict()` output; unknown keys are ignored, a bad value raises
        ValueError."""
        try:
            rows, cols = (int(v) for v in data.get("min_size", (1, 1)))
            channels = data.get("channels")
            return cls(
                description=str(data["description"]),
                modalities=_terms(data.get("modalities", ())),
                sop_classes=tuple(str(v).strip() for v in data.get("sop_classes", ())),
                body_parts=_terms(data.get("body_parts", ())),
                views=_terms(data.get("views", ())),
                photometric=_terms(data.get("photometric", ())),
                channels=None if channels is None else int(channels),
                min_size=(rows, cols),
                collection=str(data.get("collection", "")),
                notes=str(data.get("notes", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a valid input contract: {exc}") from None


@dataclass(frozen=True)
class GateResult:
    """The gate's answer: `fits` False comes with the reason a clinician reads and the list of
    each mismatch found (for the JSON output and tests)."""

    fits: bool
    reason: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)


def _chest_radiograph(size: int) -> InputContract:
    return InputContract(
        description="chest radiographs",
        modalities=("CR", "DX"),
        sop_classes=(CR_IMAGE_STORAGE, DX_PRESENTATION_STORAGE, DX_PROCESSING_STORAGE),
        body_parts=("CHEST",),
        views=("PA", "AP"),
        photometric=("MONOCHROME1", "MONOCHROME2"),
        channels=1,
        min_size=(size, size),
    )


# Defaults per MedMNIST v2 collection (Yang et al. 2023, Table 1), used when a model admin
# registers such a data set without stating the contract. Only the collections whose source
# images are DICOM-like get modality/body-part terms; the others check channels and size.
MEDMNIST_CONTRACTS: dict[str, InputContract] = {
    "pneumoniamnist": _chest_radiograph(28),
    "chestmnist": _chest_radiograph(28),
    "breastmnist": InputContract(
        description="breast ultrasound images",
        modalities=("US",),
        body_parts=("BREAST",),
        photometric=("MONOCHROME2",),
        channels=1,
        min_size=(28, 28),
    ),
    "organamnist": InputContract(
        description="abdominal CT slices (axial)",
        modalities=("CT",),
        body_parts=("ABDOMEN",),
        photometric=("MONOCHROME2",),
        channels=1,
        min_size=(28, 28),
    ),
    "organcmnist": InputContract(
        description="abdominal CT slices (coronal)",
        modalities=("CT",),
        body_parts=("ABDOMEN",),
        photometric=("MONOCHROME2",),
        channels=1,
        min_size=(28, 28),
    ),
    "organsmnist": InputContract(
        description="abdominal CT slices (sagittal)",
        modalities=("CT",),
        body_parts=("ABDOMEN",),
        photometric=("MONOCHROME2",),
        channels=1,
        min_size=(28, 28),
    ),
    "octmnist": InputContract(
        description="retinal OCT scans", modalities=("OPT",), channels=1, min_size=(28, 28)
    ),
    "retinamnist": InputContract(
        description="fundus photographs", modalities=("OP",), channels=3, min_size=(28, 28)
    ),
    "dermamnist": InputContract(
        description="dermatoscopic photographs", modalities=("XC",), channels=3, min_size=(28, 28)
    ),
    "pathmnist": InputContract(
        description="colorectal histology slides", modalities=("SM",), channels=3, min_size=(28, 28)
    ),
    "bloodmnist": InputContract(
        description="blood cell microscopy", modalities=("SM",), channels=3, min_size=(28, 28)
    ),
    "tissuemnist": InputContract(
        description="kidney cortex microscopy", modalities=("SM",), channels=1, min_size=(28, 28)
    ),
}


def contract_for_dataset(
    *,
    source: str | Path,
    channels: int,
    image_size: Sequence[int],
    collection: str | None = None,
) -> InputContract:
    """The default contract for a training set: the MedMNIST `collection`'s (by default matched
    by the file's name, e.g. pneumoniamnist.npz or pneumoniamnist_64.npz), else a contract that
    checks only channels and size ("images like its training data")."""
    if collection is None:
        collection = re.sub(r"(_\d+)?$", "", Path(str(source)).stem.lower())
    rows, cols = (int(v) for v in image_size)
    known = MEDMNIST_CONTRACTS.get(collection)
    if known is not None and known.channels in (None, channels):
        data = known.to_dict()
        data.update(collection=collection, min_size=[rows, cols])
        return InputContract.from_dict(data)
    return InputContract(
        description="images like its training data",
        channels=channels,
        min_size=(rows, cols),
        notes="No input contract was stated for this data set; only channels and size are "
        "checked before scoring.",
    )


# Modality (0008,0060) defined terms, PS3.3 C.7.3.1.1.1 (2024), plus the retired ones vendors
# still send; a stated contract may name only these.
MODALITY_CODES: frozenset[str] = frozenset(
    (
        "ANN AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DMS DG DOC DX ECG EEG EMG EOG EPS ES "
        "FID GM HC HD IO IOL IVOCT IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV "
        "OPTENF OPV OSS OT PA PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN "
        "RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA "
        "XAPROTOCOL XC "
        # Retired terms (PS3.3 C.7.3.1.1.1 note) still found in archives.
        "CD CP CS DD DF DM DS EC FA FS LP MA MS OPR ST VF SC"
    ).split()
)
# Photometric Interpretation (0028,0004) defined terms, PS3.3 C.7.6.3.1.2.
PHOTOMETRIC_TERMS: frozenset[str] = frozenset(
    {
        "MONOCHROME1",
        "MONOCHROME2",
        "PALETTE COLOR",
        "RGB",
        "YBR_FULL",
        "YBR_FULL_422",
        "YBR_PARTIAL_422",
        "YBR_PARTIAL_420",
        "YBR_ICT",
        "YBR_RCT",
        "XYB",
    }
)
# A Code String (CS) value: upper-case letters, digits, space and underscore, 16 at most
# (PS3.5 6.2); BodyPartExamined and ViewPosition are CS.
_CODE_STRING = re.compile(r"^[A-Z0-9_ ]{1,16}$")
# What a model admin states, in form order; each is checked by contract_terms.
STATED_ATTRIBUTES: tuple[str, ...] = (
    "description",
    "modalities",
    "body_parts",
    "views",
    "photometric",
    "channels",
    "min_size",
)
ATTRIBUTE_LABELS: dict[str, str] = {
    "description": "reads",
    "modalities": "modalities",
    "body_parts": "body parts",
    "views": "views",
    "photometric": "photometric interpretation",
    "channels": "channels",
    "min_size": "minimum size",
    "collection": "defaults of",
    "notes": "note",
}


def contract_terms(text: str, *, attribute: str) -> tuple[str, ...]:
    """Parse a comma-separated list of DICOM defined terms for `attribute` (modalities,
    body_parts, views, photometric); ValueError with the message a model admin reads when a
    term is not upper-case, not a Code String or (modalities, photometric) not a defined term."""
    terms = [t.strip() for t in text.split(",") if t.strip()]
    if len(set(terms)) != len(terms):
        raise ValueError("Each term may appear only once.")
    for term in terms:
        if term != term.upper():
            raise ValueError(
                f"DICOM defined terms are upper-case: write {term.upper()!r}, not {term!r}."
            )
        if attribute == "modalities" and term not in MODALITY_CODES:
            raise ValueError(
                f"{term!r} is not a DICOM modality code (PS3.3 C.7.3.1.1.1), e.g. CR, DX, CT, "
                "MR, US, MG."
            )
        if attribute == "photometric" and term not in PHOTOMETRIC_TERMS:
            raise ValueError(
                f"{term!r} is not a photometric interpretation; use "
                f"{', '.join(sorted(PHOTOMETRIC_TERMS))}."
            )
        if attribute in ("body_parts", "views") and not _CODE_STRING.match(term):
            raise ValueError(
                f"{term!r} is not a DICOM code string: at most 16 upper-case letters, digits, "
                "spaces or underscores (e.g. CHEST, ABDOMEN, PA, AP)."
            )
    return tuple(terms)


def collection_of(*names: str) -> str | None:
    """The MedMNIST collection a data set's name, path or file name points to
    ("PneumoniaMNIST", ".../pneumoniamnist_64.npz" -> "pneumoniamnist"), else None."""
    for name in names:
        # "pneumoniamnist_64", "PneumoniaMNIST 128": the size suffix is not the collection.
        stem = re.sub(r"([\s_-]+\d+)?$", "", Path(str(name or "")).stem.strip().lower())
        stem = re.sub(r"[\s_-]+", "", stem)
        if stem in MEDMNIST_CONTRACTS:
            return stem
    return None


def contract_form_defaults() -> dict[str, dict[str, str]]:
    """Each MedMNIST collection's default as the data-set form's fields hold it (comma-
    separated terms), for the page that prefills them when the name or file matches."""
    return {
        name: {
            "reads": c.description,
            "modalities": ", ".join(c.modalities),
            "body_parts": ", ".join(c.body_parts),
            "views": ", ".join(c.views),
            "photometric": ", ".join(c.photometric),
            "channels": "" if c.channels is None else str(c.channels),
        }
        for name, c in MEDMNIST_CONTRACTS.items()
    }


def contract_declare(stated: Mapping[str, Any], *, names: Sequence[str]) -> dict[str, Any]:
    """The contract stored on a data set: what the model admin stated (blank attributes mean
    "any"), or, when nothing was stated, the default of the MedMNIST collection `names` point
    to. `min_size` None (and `channels` None) mean "the training images' own", settled when a
    model is trained. Raises ValueError when a stated contract has no description or its
    channels contradict its photometric interpretation."""
    given = {k: v for k, v in stated.items() if k in STATED_ATTRIBUTES and v not in (None, "", ())}
    collection = collection_of(*names)
    if not given:
        if collection is None:
            return {}
        data = MEDMNIST_CONTRACTS[collection].to_dict()
        data.update(collection=collection, min_size=None)
        return data
    if not str(given.get("description", "")).strip():
        raise ValueError(
            "Say in a few words what the model reads, e.g. 'chest radiographs' (it heads the "
            "model card and every out-of-scope reason)."
        )
    photometric = tuple(given.get("photometric", ()))
    channels = given.get("channels")
    if channels == 1 and any(not p.startswith("MONOCHROME") for p in photometric):
        raise ValueError("One channel (greyscale) needs MONOCHROME1 or MONOCHROME2 only.")
    if channels == 3 and any(p.startswith("MONOCHROME") for p in photometric):
        raise ValueError("Three channels (colour) cannot be MONOCHROME1/MONOCHROME2.")
    modalities = tuple(given.get("modalities", ()))
    default = MEDMNIST_CONTRACTS.get(collection or "")
    # A default's SOP classes belong to its modalities; kept only when those are unchanged.
    sop_classes = default.sop_classes if default and default.modalities == modalities else ()
    min_size = given.get("min_size")
    # The form prefilled with a collection's default and submitted unchanged still names it.
    unchanged = default is not None and (
        str(given["description"]).strip(),
        modalities,
        tuple(given.get("body_parts", ())),
        tuple(given.get("views", ())),
        photometric,
        channels,
    ) == (
        default.description,
        default.modalities,
        default.body_parts,
        default.views,
        default.photometric,
        default.channels,
    )
    return {
        "description": str(given["description"]).strip(),
        "modalities": list(modalities),
        "sop_classes": list(sop_classes),
        "body_parts": list(given.get("body_parts", ())),
        "views": list(given.get("views", ())),
        "photometric": list(photometric),
        "channels": None if channels is None else int(channels),
        "min_size": None if min_size is None else [int(v) for v in min_size],
        "collection": collection if unchanged else "",
        "notes": "",
    }


def contract_for_training(
    stored: Mapping[str, Any] | None,
    *,
    source: str | Path,
    channels: int,
    image_size: Sequence[int],
) -> InputContract:
    """The contract a model trained on a data set carries: the data set's stored contract with
    its open minimum size and channels settled from the images, or, for a data set registered
    without one, `contract_for_dataset`'s default. ValueError when the stored channels are not
    the images' (the data set's check refuses such a set first)."""
    if not stored:
        return contract_for_dataset(source=source, channels=channels, image_size=image_size)
    data = dict(stored)
    if data.get("channels") not in (None, channels):
        raise ValueError(
            f"the input contract says {data['channels']} channel(s) but the images have {channels}"
        )
    data["channels"] = channels
    if data.get("min_size") is None:
        data["min_size"] = [int(v) for v in image_size]
    return InputContract.from_dict(data)


def contract_summary(contract: Mapping[str, Any] | None) -> str:
    """One phrase for a stored contract ("chest radiographs (CR/DX, chest)"), or what an
    unstated one means."""
    if not contract:
        return "not stated (only channels and size are checked)"
    try:
        return InputContract.from_dict(
            {**contract, "min_size": contract.get("min_size") or (1, 1)}
        ).summary()
    except ValueError:
        return "not a valid contract"


def contract_rows(contract: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, plain words) for each attribute of a stored contract, for a model card; an
    empty attribute reads "any"."""
    rows: list[tuple[str, str]] = []
    for key in ("description", "modalities", "body_parts", "views", "photometric"):
        value = contract.get(key)
        if key == "modalities" and value:
            words = ", ".join(_modality_words(code) for code in value)
        elif isinstance(value, list | tuple):
            words = ", ".join(str(v) for v in value) or "any"
        else:
            words = str(value or "") or "any"
        rows.append((ATTRIBUTE_LABELS[key], words))
    channels = contract.get("channels")
    rows.append(
        (
            "channels",
            {1: "1 (greyscale)", 3: "3 (colour)"}.get(channels, str(channels))
            if channels
            else "any (as the training images)",
        )
    )
    size = contract.get("min_size")
    rows.append(
        (
            "minimum size",
            f"{size[0]} x {size[1]} pixels" if size else "the training images' size",
        )
    )
    if contract.get("collection"):
        rows.append(("defaults of", f"MedMNIST {contract['collection']}"))
    if contract.get("notes"):
        rows.append(("note", str(contract["notes"])))
    return rows


def contract_check(
    contract: InputContract, *, info: ScanInfo, dataset: Dataset | None = None
) -> GateResult:
    """Check a scan's header (`info`, and the parsed DICOM `dataset` when there is one) against
    `contract`; returns fits=False with a reason like "not scored: this model reads chest
    radiographs (CR/DX, chest); this is a CT of the head" on any stated mismatch."""
    problems: list[str] = []
    modality = _text(dataset, "Modality") or (info.modality or "").strip().upper() or None
    sop_class = _text(dataset, "SOPClassUID") or info.sop_class_uid
    body_part = _text(dataset, "BodyPartExamined")
    view = _text(dataset, "ViewPosition")
    image_type = _values(dataset, "ImageType")
    is_dicom = info.kind == "dicom"

    if is_dicom and contract.modalities:
        if modality is None and sop_class not in contract.sop_classes:
            problems.append("the file states no modality")
        elif modality is not None and modality not in contract.modalities:
            problems.append(f"modality {modality}")
    if is_dicom and contract.sop_classes and sop_class and sop_class not in contract.sop_classes:
        # A CR with a CT storage class is inconsistent; either way it is not what was trained on.
        problems.append(f"SOP class {info.sop_class_name or sop_class}")
    if contract.body_parts and body_part and _body_part(body_part) not in contract.body_parts:
        problems.append(f"body part {body_part}")
    if contract.views and view and view not in contract.views:
        problems.append(f"view {view}")
    found_types = NON_DIAGNOSTIC_IMAGE_TYPES.intersection(image_type)
    if found_types:
        problems.append(f"image type {'/'.join(sorted(found_types))}")
    photometric = (info.photometric_interpretation or "").strip().upper()
    if is_dicom and contract.photometric and photometric not in contract.photometric:
        problems.append(f"photometric interpretation {photometric or 'missing'}")
    colour = info.samples_per_pixel > 1 or photometric.startswith(("RGB", "YBR", "PALETTE"))
    if contract.channels == 1 and colour:
        problems.append("colour image")
    if contract.channels == 3 and not colour:
        problems.append("greyscale image")
    min_rows, min_cols = contract.min_size
    if info.rows < min_rows or info.cols < min_cols:
        problems.append(f"{info.rows}x{info.cols} pixels")

    if not problems:
        return GateResult(fits=True)
    return GateResult(
        fits=False,
        reason=f"not scored: this model reads {contract.summary()}; "
        f"this is {_describe(info, modality, body_part, view, image_type, contract, problems)}",
        problems=tuple(problems),
    )


def _describe(
    info: ScanInfo,
    modality: str | None,
    body_part: str | None,
    view: str | None,
    image_type: tuple[str, ...],
    contract: InputContract,
    problems: list[str],
) -> str:
    """What the scan is, in the words of the reason: "a CT of the head", "a computed
    radiograph of the chest, lateral view (LL)", "a colour image", "an image of 16x16 pixels"."""
    if info.kind == "dicom" and modality:
        what = MODALITY_NAMES.get(modality, f"a {modality} image")
    elif info.kind == "dicom":
        what = "a DICOM image without a modality"
    else:
        what = f"a {info.kind.upper()} image"
    if body_part:
        what += f" of the {body_part.replace('_', ' ').lower()}"
    if view and contract.views and view not in contract.views:
        what += f", view {view}"
    extras = []
    # Once the modality is wrong, storage class and pixel format only repeat it.
    modality_wrong = any(p.startswith("modality") for p in problems)
    if "image type" in " ".join(problems):
        extras.append(f"image type {'/'.join(image_type)}")
    for problem in problems:
        if modality_wrong and problem.startswith(("photometric", "colour", "grey", "SOP")):
            continue
        if problem.startswith(("photometric", "colour", "greyscale", "SOP class")):
            extras.append(problem)
        elif problem.endswith("pixels"):
            mr, mc = contract.min_size
            extras.append(f"{problem} (at least {mr}x{mc} needed)")
        elif problem == "the file states no modality":
            extras.append(problem)
    return what + (f" ({'; '.join(extras)})" if extras else "")


def _text(dataset: Dataset | None, keyword: str) -> str | None:
    if dataset is None:
        return None
    value = dataset.get(keyword)
    if value is None:
        return None
    if not isinstance(value, str) and isinstance(value, Iterable):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip().upper()
    return text or None


def _values(dataset: Dataset | None, keyword: str) -> tuple[str, ...]:
    if dataset is None or dataset.get(keyword) is None:
        return ()
    value = dataset.get(keyword)
    items = [value] if isinstance(value, str) else list(value)
    return tuple(str(v).strip().upper() for v in items if str(v).strip())


def _modality_words(code: str) -> str:
    """ "CR (computed radiograph)"; a code whose name is itself ("a CT") stays bare."""
    name = MODALITY_NAMES.get(code, "").split(" ", 1)[-1]
    return f"{code} ({name})" if name and name != code else code


def _body_part(value: str) -> str:
    return BODY_PART_SYNONYMS.get(value, value)


def _terms(values: Iterable[Any]) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    return tuple(str(v).strip().upper() for v in values if str(v).strip())


def contract_file_terms(contract: InputContract | None) -> dict[str, int | None]:
    """What a contract checks of a PNG/JPEG, which carries no DICOM metadata: channels (1
    greyscale, 3 colour, None any) and minimum rows and columns. The upload form writes these
    on each model's option (static/js/scan_upload.js) and `file_fit` reads the same terms, so
    the browser and the server offer and refuse alike."""
    if contract is None:
        return {"channels": None, "min_rows": None, "min_cols": None}
    rows, cols = contract.min_size
    return {"channels": contract.channels, "min_rows": rows, "min_cols": cols}


def file_fit(
    terms: Mapping[str, int | None],
    *,
    kind: str,
    colour: bool | None = None,
    rows: int | None = None,
    cols: int | None = None,
) -> str:
    """Why a model with `terms` (contract_file_terms) cannot take a file, "" when it can.
    A PNG/JPEG is checked as contract_check checks it (channels, size); what is not known
    yet (None) refuses nothing. A DICOM is never refused here: its header decides at upload
    (routing to the model that fits, else the metadata gate's reason)."""
    if kind == "dicom":
        return ""
    channels = terms.get("channels")
    if channels == 1 and colour is True:
        return "it is a colour image and this model reads greyscale images"
    if channels == 3 and colour is False:
        return "it is a greyscale image and this model reads colour images"
    min_rows, min_cols = terms.get("min_rows") or 0, terms.get("min_cols") or 0
    if rows is not None and cols is not None and (rows < min_rows or cols < min_cols):
        return f"it is {rows}x{cols} pixels and this model needs at least {min_rows}x{min_cols}"
    return ""
