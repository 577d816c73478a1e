"""Data-set archives are judged from the zip directory and .npy headers before anything is
extracted or loaded: hostile files are refused with a specific message, good ones pass."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from diagnosis.imaging.dataset_archive import (
    ArchiveLimits,
    ArchiveRejected,
    check_npz,
    extract_image_zip,
)
from tests.diagnosis.archives import (
    bomb_zip,
    class_folders_zip,
    jpeg,
    pickled_npz,
    png,
    small_npz,
    symlink_zip,
    zip_bytes,
)

LIMITS = ArchiveLimits(
    max_uncompressed_bytes=64 << 20, max_entries=1000, max_ratio=100, max_pixels=10_000_000
)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused_zip(tmp_path, data, match, limits=LIMITS, *, by_content=False) -> ArchiveRejected:
    dest = tmp_path / "out"
    with pytest.raises(ArchiveRejected, match=match) as caught:
        extract_image_zip(write(tmp_path, "x.zip", data), dest, limits)
    if not by_content:  # refused from the central directory: nothing was extracted
        assert not dest.exists()
    return caught.value


def test_class_folders_extract_with_only_images(tmp_path):
    data = class_folders_zip(prefix="my-data/", **{"__MACOSX/my-data/._x.png": b"junk"})
    summary = extract_image_zip(write(tmp_path, "x.zip", data), tmp_path / "out", LIMITS)
    assert summary.class_names == ("normal", "pneumonia") and not summary.has_splits
    files = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")
    )
    assert files[0] == "normal/n0.png" and len(files) == 10


def test_split_folders_are_kept(tmp_path):
    entries = {
        f"{s}/{c}/{i}.png": png(i) for s in ("train", "val", "test") for c in "ab" for i in range(2)
    }
    summary = extract_image_zip(
        write(tmp_path, "x.zip", zip_bytes(entries)), tmp_path / "o", LIMITS
    )
    assert summary.has_splits and summary.class_names == ("a", "b")


def test_truncated_zip(tmp_path):
    data = class_folders_zip()
    refused_zip(tmp_path, data[: len(data) // 2], "damaged, truncated")


def test_zip_bomb_over_the_size_cap(tmp_path):
    error = refused_zip(tmp_path, bomb_zip(80), "expands to .* the limit is")
    assert error.too_large


def test_zip_bomb_over_the_ratio_cap(tmp_path):
    error = refused_zip(tmp_path, bomb_zip(20), "fold.*zip bomb")
    assert error.too_large


def test_too_many_entries(tmp_path):
    limits = ArchiveLimits(1 << 30, max_entries=5, max_ratio=100, max_pixels=10_000_000)
    assert refused_zip(tmp_path, class_folders_zip(), "entries; the limit is 5", limits).too_large


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../escape/a.png", r"outside the archive"),
        ("a/../../b/x.png", r"outside the archive"),
        ("/etc/cron.d/x.png", "absolute path"),
        ("C:/Windows/x.png", "absolute path"),
        ("a\\..\\x.png", "backslash"),
    ],
)
def test_unsafe_entry_names(tmp_path, name, match):
    refused_zip(tmp_path, class_folders_zip(**{name: png()}), match)


def test_symlink_entry(tmp_path):
    refused_zip(tmp_path, symlink_zip(), "symbolic link")


def test_empty_zip(tmp_path):
    refused_zip(tmp_path, zip_bytes({}), "no PNG or JPEG")


def test_non_image_entry(tmp_path):
    refused_zip(tmp_path, class_folders_zip(**{"normal/notes.txt": b"hello"}), "not a PNG or JPEG")


def test_image_name_with_other_content(tmp_path):
    refused_zip(
        tmp_path,
        class_folders_zip(**{"normal/x.png": b"MZ\x90\x00 not an image"}),
        "by its content",
        by_content=True,
    )


def test_decompression_bomb_image(tmp_path):
    limits = ArchiveLimits(64 << 20, 1000, 100, max_pixels=100 * 100)
    big = png(1, size=(200, 200))
    assert refused_zip(
        tmp_path,
        class_folders_zip(**{"normal/big.png": big}),
        "decompression bomb",
        limits,
        by_content=True,
    ).too_large


def test_one_class_or_loose_files(tmp_path):
    refused_zip(tmp_path, zip_bytes({f"a/{i}.png": png(i) for i in range(3)}), "at least 2")
    (tmp_path / "second").mkdir()
    refused_zip(
        tmp_path / "second", zip_bytes({"a.png": png(), "b/c.png": png()}), "expected layout"
    )


def test_mixed_sizes_modes_and_formats_pass_the_archive_check(tmp_path):
    entries = {
        "a/1.png": png(1, (12, 12), "L"),
        "a/2.png": png(2, (30, 20), "RGB"),
        "a/3.jpg": jpeg(),
    }
    entries |= {
        "b/1.png": png(3, (12, 12), "RGBA"),
        "b/2.jpeg": jpeg(200),
        "b/3.png": png(4, (8, 9), "P"),
    }
    summary = extract_image_zip(
        write(tmp_path, "x.zip", zip_bytes(entries)), tmp_path / "o", LIMITS
    )
    assert summary.counts == {"a": 3, "b": 3}


def test_real_npz_passes_from_headers(tmp_path):
    summary = check_npz(write(tmp_path, "d.npz", small_npz()), LIMITS)
    assert summary.image_shape == (28, 28, 1)
    assert summary.split_sizes == {"train": 40, "val": 40, "test": 40}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (pickled_npz(), "Python objects"),
        (small_npz(val_labels=None), "missing the array.*val_labels"),
        (small_npz(extra=np.zeros(3)), "unexpected array.*extra"),
        (small_npz(test_labels=np.zeros(39, np.int64)), "40 images but 39 labels"),
        (small_npz(train_labels=np.zeros((40, 3), np.int64)), "single-label"),
        (small_npz(val_images=np.zeros((40, 32, 32), np.uint8)), "differs between splits"),
        (small_npz(train_images=np.zeros((40, 28), np.uint8)), r"expected \(N, H, W\)"),
        (small_npz(test_images=np.array([["a"] * 40]).T), "dtype"),
        (
            small_npz(val_images=np.zeros((0, 28, 28), np.uint8), val_labels=np.zeros(0, np.int64)),
            "empty",
        ),
        (b"this is a CSV file, renamed\n1,2,3\n", "not a .npz archive"),
        (
            zip_bytes({"train_images.npy": b"\x93NUMPY garbage"}),
            "not a readable numpy array|missing",
        ),
    ],
)
def test_bad_npz_files(tmp_path, data, match):
    with pytest.raises(ArchiveRejected, match=match):
        check_npz(write(tmp_path, "d.npz", data), LIMITS)


def test_npz_header_that_lies_about_its_size(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((40, 28, 28), np.uint8))
    short = buffer.getvalue()[:-100]
    with zipfile.ZipFile(io.BytesIO(small_npz())) as source:
        entries = {info.filename: source.read(info) for info in source.infolist()}
    entries["train_images.npy"] = short
    with pytest.raises(ArchiveRejected, match="declares .* but holds"):
        check_npz(write(tmp_path, "d.npz", zip_bytes(entries)), LIMITS)
