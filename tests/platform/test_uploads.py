"""The one upload size cap: the limit it names is the configured number of megabytes."""

from __future__ import annotations

from medai_site.core.uploads import MEGABYTE, upload_size_problem


def test_within_the_cap_there_is_no_problem():
    assert upload_size_problem(10 * MEGABYTE, cap=10 * MEGABYTE) == ""
    assert upload_size_problem(0, cap=1) == ""


def test_past_the_cap_the_message_names_size_and_configured_limit():
    assert upload_size_problem(15 * MEGABYTE + MEGABYTE // 2, cap=15 * MEGABYTE, noun="photo") == (
        "The photo is 15.5 MB, larger than the 15 MB limit."
    )
    assert upload_size_problem(501 * MEGABYTE, cap=500 * MEGABYTE, purpose=" for data sets") == (
        "The file is 501.0 MB, larger than the 500 MB limit for data sets."
    )


def test_an_upload_stopped_while_streaming_is_only_said_to_be_larger():
    assert upload_size_problem(None, cap=500 * MEGABYTE, purpose=" for data sets") == (
        "The file is larger than the 500 MB limit for data sets."
    )
