"""Parquet bytes already in memory (read once, hashed, then parsed) as an Arrow table."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def read_buffer(path: str | os.PathLike[str]) -> pa.Buffer:
    """The content of the file at `path`, read straight into Arrow's memory.

    To hash (it has the buffer protocol) and then parse (`table_from_bytes`) without the
    copy a Python `bytes` needs: at 1M transactions a step reads ~0.2 GB of files.

    Raises:
        FileNotFoundError: there is no file at `path`.
    """
    with pa.OSFile(os.fspath(path), "r") as file:
        return file.read_buffer()


def parquet_from_bytes(data: bytes | pa.Buffer) -> pq.ParquetFile:
    """The Parquet file whose content is `data`, to read in parts (see `table_from_bytes`).

    Python bytes are copied into Arrow's own memory first (a `read_buffer` is there already).
    Parsing a Python `bytes` directly leaves the last reference to it inside Arrow's reader,
    which an Arrow worker thread can drop while the interpreter exits; freeing a Python
    object then needs the GIL, which an exiting interpreter no longer gives, and the process
    aborts ("terminate called without an active exception", SIGABRT) instead of leaving
    with the exit code the command chose.

    Read with `ParquetFile`, not `read_table`: `read_table` imports `pyarrow.dataset` on its
    first call, ~0.25 s of a step's CPU at any day size.

    Raises:
        pyarrow.ArrowException: `data` is not Parquet.
    """
    if isinstance(data, pa.Buffer):
        return pq.ParquetFile(pa.BufferReader(data))
    native = pa.allocate_buffer(len(data))
    memoryview(native).cast("B")[:] = data
    return pq.ParquetFile(pa.BufferReader(native))


def table_from_bytes(data: bytes | pa.Buffer, columns: list[str] | None = None) -> pa.Table:
    """`columns` of the Parquet file whose content is `data` (all columns when None).

    Raises:
        KeyError: a column of `columns` is not in the file (`ParquetFile.read` would
            silently leave it out).
        pyarrow.ArrowException: `data` is not Parquet.
    """
    parquet = parquet_from_bytes(data)
    if columns is not None:
        missing = [name for name in columns if name not in parquet.schema_arrow.names]
        if missing:
            raise KeyError(f"no column {', '.join(missing)} in the file; it has "
                           f"{', '.join(parquet.schema_arrow.names)}")
    return parquet.read(columns=columns)


def canonical_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The Parquet bytes of a canonical frame; same frame, same bytes (no index, no time)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()
