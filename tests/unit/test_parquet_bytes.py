"""Parquet parsed from bytes in memory leaves no Python object in Arrow's hands."""

from __future__ import annotations

import io
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from trainer.data.parquet import table_from_bytes


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


def test_reading_does_not_import_pyarrow_dataset():
    # WHY: pq.read_table imports pyarrow.dataset on its first call (~0.25 s of CPU), paid
    # by every training step, whatever its day size.
    import subprocess

    code = ("import io, sys, pyarrow as pa, pyarrow.parquet as pq\n"
            "from trainer.data.parquet import table_from_bytes\n"
            "s = io.BytesIO(); pq.write_table(pa.table({'a': [1]}), s)\n"
            "assert table_from_bytes(s.getvalue(), ['a']).num_rows == 1\n"
            "print('pyarrow.dataset' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_importing_trainer_sets_arrow_memory_pool_unless_the_user_chose_one():
    # WHY: with mimalloc, Arrow's default, a fresh step process paid ~0.13 s of CPU on each
    # of its first two large allocations.
    import os
    import subprocess

    code = "import trainer, pyarrow as pa; print(pa.default_memory_pool().backend_name)"

    def backend(**env: str) -> str:
        clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env={**clean, **env}).stdout.strip()

    assert backend() in ("jemalloc", "system")
    assert backend(ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"
    # AND when pyarrow was imported first (trainer then sets the pool itself)
    code = "import pyarrow as pa, trainer; print(pa.default_memory_pool().backend_name)"
    assert backend() in ("jemalloc", "system")
