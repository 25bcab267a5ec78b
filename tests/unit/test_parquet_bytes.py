"""Parquet parsed from bytes in memory leaves no Python object in Arrow's hands."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainer.data.parquet import read_buffer, table_from_bytes
from trainer.share.files import sha256_bytes


def test_the_reader_keeps_no_reference_to_the_python_bytes():
    # WHY: a reference Arrow keeps to a Python `bytes` is dropped later on an Arrow worker
    # thread; when that happens while the interpreter exits, the process aborts (SIGABRT)
    # instead of leaving with its exit code. `pq.read_table(pa.BufferReader(data))` still
    # holds one after it returns, in about one call out of three.
    sink = io.BytesIO()
    pq.write_table(pa.table({"a": list(range(5000)), "b": [str(i) for i in range(5000)]}),
                   sink)
    data = sink.getvalue()
    baseline = sys.getrefcount(data)
    for _ in range(50):
        table = table_from_bytes(data, ["a"])
        assert sys.getrefcount(data) == baseline
        assert table.column_names == ["a"] and table.column("a").to_pylist()[-1] == 4999
    assert table_from_bytes(data).column_names == ["a", "b"]


def _parquet_bytes() -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), sink)
    return sink.getvalue()


def test_a_column_missing_from_the_file_is_an_error_naming_it():
    # WHY: ParquetFile.read leaves an unknown column out silently; a day without TX_FRAUD
    # must not be read as a day without frauds.
    try:
        table_from_bytes(_parquet_bytes(), ["a", "TX_FRAUD"])
    except KeyError as exc:
        assert "TX_FRAUD" in str(exc) and "a, b" in str(exc)
    else:
        raise AssertionError("a missing column was read without an error")


def test_a_file_read_into_arrow_memory_hashes_and_parses_as_its_bytes(tmp_path: Path):
    # WHY: the step hashes a day's file and parses the same read, without a Python copy
    path = tmp_path / "day.parquet"
    path.write_bytes(_parquet_bytes())
    buffer = read_buffer(path)
    assert sha256_bytes(buffer) == sha256_bytes(path.read_bytes())
    assert table_from_bytes(buffer, ["b"]).equals(table_from_bytes(path.read_bytes(), ["b"]))
    with pytest.raises(FileNotFoundError):
        read_buffer(tmp_path / "absent.parquet")
