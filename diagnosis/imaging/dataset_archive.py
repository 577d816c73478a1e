"""Uploaded data-set archives (a MedMNIST-style .npz, or a .zip of one folder per class):
every check that can be made from the zip's central directory and the .npy headers is made
before a byte is extracted or an array is loaded. Pure Python, no Django.

A .npz is itself a zip of .npy files, so both kinds get the same zip-bomb checks.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from diagnosis.imaging.raster import JPEG_MAGIC, PNG_MAGIC, _declared_size

SPLITS: tuple[str, ...] = ("train", "val", "test")
NPZ_KEYS: tuple[str, ...] = tuple(f"{s}_{k}" for s in SPLITS for k in ("images", "labels"))
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg"})
# Folders and files that archivers add on their own (macOS Finder, Windows Explorer); they are
# skipped, never extracted.
_ARCHIVER_LITTER: frozenset[str] = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db"})
# Compression ratios are only judged on entries big enough to matter: a 2 kB blank PNG that
# deflates 300:1 is harmless, a 1 GB run of zeros is not.
_RATIO_FLOOR_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


class ArchiveRejected(Exception):
    """An archive refused with a message for the model admin; ``too_large`` marks the caps
    (HTTP 413) as opposed to malformed content (HTTP 400)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.too_large = too_large


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what one archive may expand to."""

    max_uncompressed_bytes: int
    max_entries: int
    max_ratio: float
    max_pixels: int


@dataclass(frozen=True)
class NpzSummary:
    """What the .npy headers of a checked .npz declare."""

    image_shape: tuple[int, int, int]
    split_sizes: dict[str, int]


@dataclass(frozen=True)
class FolderSummary:
    """What an extracted zip holds: images per class (per split when it had split folders)."""

    class_names: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)
    has_splits: bool = False


def _open_zip(path: Path, what: str) -> zipfile.ZipFile:
    if not zipfile.is_zipfile(path):
        raise ArchiveRejected(
            f"The file is not a {what} archive (no zip directory found: it is damaged, "
            "truncated, or another kind of file renamed)."
        )
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveRejected(f"The {what} archive is damaged or truncated ({exc}).") from None


def _check_directory(archive: zipfile.ZipFile, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """Refuse on the central directory alone: entry count, total size, ratios, encryption."""
    entries = archive.infolist()
    if len(entries) > limits.max_entries:
        raise ArchiveRejected(
            f"The archive has {len(entries):,} entries; the limit is {limits.max_entries:,}.",
            too_large=True,
        )
    total = sum(info.file_size for info in entries)
    if total > limits.max_uncompressed_bytes:
        raise ArchiveRejected(
            f"The archive expands to {total / 1e6:,.1f} MB; the limit is "
            f"{limits.max_uncompressed_bytes / 1e6:,.0f} MB.",
            too_large=True,
        )
    packed = sum(info.compress_size for info in entries)
    if total > _RATIO_FLOOR_BYTES and total > limits.max_ratio * max(packed, 1):
        raise ArchiveRejected(
            f"The archive expands {total / max(packed, 1):,.0f}-fold ({packed:,} bytes to "
            f"{total:,}); the limit is {limits.max_ratio:,.0f}-fold (a zip bomb?).",
            too_large=True,
        )
    for info in entries:
        if info.file_size > _RATIO_FLOOR_BYTES and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            ratio = info.file_size / max(info.compress_size, 1)
            raise ArchiveRejected(
                f"The entry {info.filename!r} expands {ratio:,.0f}-fold; the limit is "
                f"{limits.max_ratio:,.0f}-fold (a zip bomb?).",
                too_large=True,
            )
        if info.flag_bits & 0x1:
            raise ArchiveRejected(f"The entry {info.filename!r} is encrypted.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArchiveRejected(
                f"The entry {info.filename!r} uses a compression method other than "
                "stored or deflate."
            )
    return entries


def _safe_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The entry's path components; refuses absolute names, '..', drive letters, backslashes,
    control characters and symbolic links."""
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ArchiveRejected(f"The entry {name!r} is a symbolic link; links are not accepted.")
    if "\\" in name or any(ord(ch) < 32 for ch in name):
        raise ArchiveRejected(f"The entry {name!r} has a backslash or control character.")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveRejected(f"The entry {name!r} has an absolute path.")
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise ArchiveRejected(f"The entry {name!r} points outside the archive ('..').")
    return parts


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The entry's bytes, never more than the central directory declared (a lying header
    stops here, not after filling the disk); the CRC is checked by zipfile."""
    chunks, size = [], 0
    try:
        with archive.open(info) as handle:
            while chunk := handle.read(_CHUNK):
                size += len(chunk)
                if size > info.file_size:
                    raise ArchiveRejected(
                        f"The entry {info.filename!r} holds more data than its header declares."
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a disk or system error, not bad input
        raise ArchiveRejected(
            f"The entry {info.filename!r} is damaged or truncated ({exc})."
        ) from None
    return b"".join(chunks)


def check_npz(path: Path, limits: ArchiveLimits) -> NpzSummary:
    """Check a MedMNIST-style .npz from its zip directory and .npy headers alone: exactly the
    six arrays {split}_images / {split}_labels, numeric dtypes (never pickled objects), one
    label per image, the same image shape in every split. Raises ArchiveRejected."""
    with _open_zip(path, ".npz") as archive:
        entries = _check_directory(archive, limits)
        members: dict[str, zipfile.ZipInfo] = {}
        for info in entries:
            if info.is_dir():
                continue
            name = info.filename
            if not name.endswith(".npy") or "/" in name:
                raise ArchiveRejected(
                    f"The .npz holds {name!r}, which is not a numpy array; a .npz data set "
                    f"holds only the arrays {', '.join(NPZ_KEYS)}."
                )
            members[name[: -len(".npy")]] = info
        missing = [k for k in NPZ_KEYS if k not in members]
        if missing:
            raise ArchiveRejected(f"The .npz is missing the array(s) {', '.join(missing)}.")
        extra = sorted(set(members) - set(NPZ_KEYS))
        if extra:
            raise ArchiveRejected(
                f"The .npz has unexpected array(s) {', '.join(extra)}; a MedMNIST-style file "
                f"holds exactly {', '.join(NPZ_KEYS)}."
            )
        headers = {key: _npy_header(archive, members[key], key) for key in NPZ_KEYS}

    sizes: dict[str, int] = {}
    shapes: dict[str, tuple[int, int, int]] = {}
    for split in SPLITS:
        (ishape, idtype), (lshape, ldtype) = headers[f"{split}_images"], headers[f"{split}_labels"]
        if idtype.kind not in "uif":
            raise ArchiveRejected(
                f"{split}_images has dtype {idtype}; expected uint8 pixels (or floats in [0, 1])."
            )
        if len(ishape) == 3:
            ishape = (*ishape, 1)
        if len(ishape) != 4 or ishape[-1] not in (1, 3):
            raise ArchiveRejected(
                f"{split}_images has shape {ishape}; expected (N, H, W) or (N, H, W, 3)."
            )
        if ldtype.kind not in "uif":
            raise ArchiveRejected(f"{split}_labels has dtype {ldtype}; expected integer classes.")
        if len(lshape) == 2 and lshape[1] == 1:
            lshape = lshape[:1]
        if len(lshape) != 1:
            raise ArchiveRejected(
                f"{split}_labels has shape {lshape}; expected (N,) or (N, 1) single-label classes."
            )
        if ishape[0] != lshape[0]:
            raise ArchiveRejected(f"{split}: {ishape[0]} images but {lshape[0]} labels.")
        if ishape[0] == 0:
            raise ArchiveRejected(f"{split}: the split is empty.")
        height, width, channels = ishape[1:]
        if height < 2 or width < 2:
            raise ArchiveRejected(f"{split}_images are {height} x {width}; too small.")
        if height * width * channels > limits.max_pixels:
            raise ArchiveRejected(
                f"{split}_images are {height:,} x {width:,} x {channels}, above this server's "
                f"limit of {limits.max_pixels:,} values per image.",
                too_large=True,
            )
        sizes[split], shapes[split] = int(ishape[0]), (height, width, channels)
    if len(set(shapes.values())) != 1:
        raise ArchiveRejected(f"The image shape differs between splits: {shapes}.")
    return NpzSummary(image_shape=shapes["train"], split_sizes=sizes)


def _npy_header(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str
) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy member's header; the data must be exactly that long."""
    try:
        with archive.open(info) as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            header_bytes = handle.tell()
    except (ValueError, EOFError, zipfile.BadZipFile, SyntaxError, TypeError) as exc:
        raise ArchiveRejected(f"{key} is not a readable numpy array ({exc}).") from None
    if dtype.hasobject:
        raise ArchiveRejected(
            f"{key} holds Python objects (a pickled array); only plain numeric arrays are "
            "accepted, since unpickling can run code."
        )
    if dtype.fields is not None or dtype.subdtype is not None:
        raise ArchiveRejected(f"{key} has a structured dtype {dtype}; expected plain numbers.")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if info.file_size - header_bytes != expected:
        raise ArchiveRejected(
            f"{key} declares {shape} {dtype} ({expected:,} bytes) but holds "
            f"{info.file_size - header_bytes:,} bytes."
        )
    return tuple(int(n) for n in shape), dtype


def extract_image_zip(path: Path, dest: Path, limits: ArchiveLimits) -> FolderSummary:
    """Extract a .zip of one folder per class (optionally under train/ val/ test/, optionally
    inside one enclosing folder) into the new folder ``dest``, after checking the central
    directory: only PNG/JPEG entries (checked by content), no links, absolute names or '..',
    each image's declared size under the pixel cap. Raises ArchiveRejected; the caller
    removes ``dest`` on any error."""
    with _open_zip(path, ".zip") as archive:
        entries = _check_directory(archive, limits)
        files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        for info in entries:
            parts = _safe_parts(info)
            # Hidden entries are skipped, as the folder loader skips them.
            if not parts or any(p in _ARCHIVER_LITTER or p.startswith(".") for p in parts):
                continue
            if info.is_dir():
                continue
            if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
                raise ArchiveRejected(
                    f"The entry {info.filename!r} is not a PNG or JPEG image; the zip may hold "
                    "only images, in one folder per class."
                )
            files.append((info, parts))
        if not files:
            raise ArchiveRejected("The zip holds no PNG or JPEG images.")
        files = _strip_enclosing_folder(files)
        has_splits = _layout(files)
        classes = sorted({parts[-2] for _, parts in files})
        if len(classes) < 2:
            raise ArchiveRejected(
                f"The zip has {len(classes)} class folder(s); at least 2 are needed "
                "(one folder of images per class)."
            )
        seen: set[str] = set()
        counts: dict[str, int] = {}
        dest.mkdir()
        for info, parts in files:
            key = "/".join(parts).casefold()
            if key in seen:
                raise ArchiveRejected(f"The entry {info.filename!r} appears twice.")
            seen.add(key)
            data = _read_bounded(archive, info)
            _check_image(info.filename, data, limits.max_pixels)
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL | O_NOFOLLOW: nothing already there (a link included) is written through.
            fd = os.open(
                target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o640
            )
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            label = "/".join(parts[:-1])
            counts[label] = counts.get(label, 0) + 1
    return FolderSummary(class_names=tuple(classes), counts=counts, has_splits=has_splits)


def _strip_enclosing_folder(
    files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]],
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    # Zipping a folder (the usual way to make the archive) puts everything under its name.
    while True:
        tops = {parts[0] for _, parts in files}
        if len(tops) != 1 or min(len(parts) for _, parts in files) < 3:
            return files
        if next(iter(tops)) in SPLITS:
            return files
        files = [(info, parts[1:]) for info, parts in files]


def _layout(files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]) -> bool:
    """True for train/ val/ test/<class>/ layouts, False for <class>/; refuses anything else."""
    depths = {len(parts) for _, parts in files}
    tops = {parts[0] for _, parts in files}
    if depths == {3} and tops == set(SPLITS):
        return True
    if depths == {2}:
        return False
    if depths == {3} and tops <= set(SPLITS):
        raise ArchiveRejected(
            f"The zip has split folder(s) {', '.join(sorted(tops))} but not all of train/ val/ "
            "test/; use all three, or one folder per class with no split folders."
        )
    odd = next(info.filename for info, parts in files if len(parts) != 2)
    raise ArchiveRejected(
        f"The entry {odd!r} is not in the expected layout: one folder of images per class "
        "(class/image.png), or train/ val/ test/ each with one folder per class."
    )


def _check_image(name: str, data: bytes, max_pixels: int) -> None:
    """Refuse an entry that is not PNG/JPEG by content, or declares more pixels than scans may."""
    if data.startswith(PNG_MAGIC):
        kind = "png"
    elif data.startswith(JPEG_MAGIC):
        kind = "jpeg"
    else:
        raise ArchiveRejected(f"The entry {name!r} is not a PNG or JPEG image by its content.")
    size = _declared_size(data, kind)
    if size is None:
        raise ArchiveRejected(f"The entry {name!r} has no readable image header.")
    width, height, samples = size
    if width * height * samples > max_pixels:
        raise ArchiveRejected(
            f"The image {name!r} declares {width:,} x {height:,} x {samples} values, above this "
            f"server's limit of {max_pixels:,} (a decompression bomb?).",
            too_large=True,
        )
