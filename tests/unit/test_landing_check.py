"""A landing area the flows cannot read is refused before anything runs, naming it."""

from __future__ import annotations

import pytest

from flows.errors import LandingError
from flows.ingest import check_landing


def test_a_missing_landing_directory_is_named_with_what_to_do(tmp_path):
    missing = tmp_path / "my-landing"
    with pytest.raises(LandingError) as raised:
        check_landing(str(missing))
    assert str(raised.value).startswith(f"landing {str(missing)!r}: no such directory; ")
    assert "fraudpipe simulate --out DIR" in str(raised.value)
    assert "\n" not in str(raised.value)  # one line: the run's state message


def test_a_file_is_not_a_landing_area_and_the_parameter_is_named(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("TRANSACTION_ID,TX_FRAUD\n")
    with pytest.raises(LandingError, match=r"^labels '.*labels\.csv': is a file; "):
        check_landing(str(path), "labels")


def test_an_existing_directory_passes(tmp_path):
    check_landing(str(tmp_path))
    check_landing(f"file://{tmp_path}")
