"""The STOW-RS wire format without a database: the streaming multipart split (parts that
cross read boundaries, content that nearly looks like a delimiter), the Content-Type rules
and the response module."""

from __future__ import annotations

import io

import pytest

from diagnosis.pacs.dicomweb import (
    CANNOT_UNDERSTAND,
    InstanceOutcome,
    MultipartInvalid,
    MultipartTooLarge,
    StowContentType,
    multipart_split,
    store_response,
    stow_content_type,
)

BOUNDARY = "b0undary"


def trickle(data: bytes, step: int):
    stream = io.BytesIO(data)
    return lambda size: stream.read(min(size, step))


def body(*contents: bytes, headers: str = "Content-Type: application/dicom\r\n") -> bytes:
    out = b""
    for content in contents:
        out += f"--{BOUNDARY}\r\n{headers}\r\n".encode() + content + b"\r\n"
    return out + f"--{BOUNDARY}--".encode()


@pytest.mark.parametrize("step", [1, 3, 7, 1 << 16])
def test_parts_come_back_whole_whatever_the_read_size(step):
    tricky = b"a\r\n--b0undar" + b"\r\n-" + b"\r\n--b0undarY" + bytes(range(256)) * 300
    parts = multipart_split(
        trickle(body(tricky, b"", b"second"), step),
        boundary=BOUNDARY,
        max_parts=10,
        max_part_bytes=1 << 20,
    )
    assert [p.file.read() for p in parts] == [tricky, b"", b"second"]
    assert [p.size for p in parts] == [len(tricky), 0, 6]
    assert all(p.content_type == "application/dicom" for p in parts)


def test_a_part_without_headers_is_dicom_and_other_types_are_kept():
    data = f"--{BOUNDARY}\r\n\r\nx\r\n--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\ny\r\n--{BOUNDARY}--"
    parts = multipart_split(
        trickle(data.encode(), 5), boundary=BOUNDARY, max_parts=5, max_part_bytes=9
    )
    assert [p.content_type for p in parts] == ["application/dicom", "text/plain"]


def test_caps_on_parts_and_part_size():
    with pytest.raises(MultipartTooLarge):
        multipart_split(
            trickle(body(b"1", b"2", b"3"), 4), boundary=BOUNDARY, max_parts=2, max_part_bytes=9
        )
    with pytest.raises(MultipartTooLarge):
        multipart_split(
            trickle(body(b"0123456789"), 4), boundary=BOUNDARY, max_parts=2, max_part_bytes=9
        )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"no delimiter",
        f"--{BOUNDARY}\r\nContent-Type: a".encode(),
        f"--{BOUNDARY}xx\r\n\r\n".encode(),
    ],
)
def test_malformed_bodies(data):
    with pytest.raises(MultipartInvalid):
        multipart_split(trickle(data, 3), boundary=BOUNDARY, max_parts=2, max_part_bytes=9)


def test_content_types():
    assert stow_content_type('multipart/related; type="application/dicom"; boundary=x') == (
        StowContentType(boundary="x")
    )
    assert stow_content_type("multipart/related; boundary=x") == StowContentType(boundary="x")
    assert isinstance(stow_content_type("application/dicom"), str)
    assert isinstance(
        stow_content_type('multipart/related; type="application/dicom+json"; boundary=x'), str
    )
    with pytest.raises(MultipartInvalid):
        stow_content_type('multipart/related; type="application/dicom"')


def test_the_response_lists_what_was_sent():
    answer = store_response(
        [InstanceOutcome("1.2.3", "1.2.3.4"), InstanceOutcome("", "", CANNOT_UNDERSTAND)]
    )
    assert answer["00081199"]["Value"] == [
        {
            "00081150": {"vr": "UI", "Value": ["1.2.3"]},
            "00081155": {"vr": "UI", "Value": ["1.2.3.4"]},
        }
    ]
    assert answer["00081198"]["Value"] == [{"00081197": {"vr": "US", "Value": [0xC000]}}]
    assert store_response([]) == {"00081199": {"vr": "SQ"}}
