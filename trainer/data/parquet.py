"""Parquet bytes already in memory (read once, hashed, then parsed) as an Arrow table."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq


def table_from_bytes(data: bytes, columns: list[str] | None = None) -> pa.Table:
    """`columns` of the Parquet file whose content is `data` (all columns when None).

    The bytes are copied into Arrow's own memory first. Parsing a Python `bytes` directly
    leaves the last reference to it inside Arrow's reader, which an Arrow worker thread can
    drop while the interpreter exits; freeing a Python object then needs the GIL, which an
    exiting interpreter no longer gives, and the process aborts ("terminate called without
    an active exception", SIGABRT) instead of leaving with the exit code the command chose.
    Raises what `pyarrow.parquet.read_table` raises for bytes that are not Parquet.
    """
    native = pa.allocate_buffer(len(data))
    memoryview(native).cast("B")[:] = data
    return pq.read_table(pa.BufferReader(native), columns=columns)
