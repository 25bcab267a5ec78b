"""The feature state file: Parquet, one row per entity of each kind.

The state's day and inputs are in the file's key-value metadata (`STATE_METADATA_KEY`); a
file of another `STATE_FORMAT` or features version is refused, and the step rebuilds it.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trainer.data.parquet import parquet_from_bytes
from trainer.errors import DatasetValidationError
from trainer.features.compute import (
    FEATURES_VERSION,
)
from trainer.features.state import (
    EntitySums,
    FeatureState,
    HighRows,
    Kind,
    kinds,
)

#: Format of the state file; a file of another format (or features version) is rebuilt.
#: 2: the delayed customer windows and the terminals' first fraud times (profiles).
STATE_FORMAT = 2
#: Key of the Parquet key-value metadata holding the state's day and inputs.
STATE_METADATA_KEY = b"fraudpipe.feature_state"


# --- the state file: Parquet, one row per entity ------------------------------------------


def _sum_columns(kind: Kind) -> list[str]:
    names = [f"NB_TX_{n}" for n in kind.carried]
    names += [f"{name}_{part}_{n}" for name in kind.floats for n in kind.carried
              for part in ("HI", "LO")]
    names += [f"{name}_{n}" for name in kind.ints for n in kind.carried]
    return names + ["LAST_TIME"]


def _sum_arrays(kind: Kind, sums: EntitySums) -> dict[str, np.ndarray]:
    arrays = {f"NB_TX_{n}": sums.counts[n] for n in kind.carried}
    for (name, n), (hi, lo) in sums.floats.items():
        arrays[f"{name}_HI_{n}"], arrays[f"{name}_LO_{n}"] = hi, lo
    for (name, n), values in sums.ints.items():
        arrays[f"{name}_{n}"] = values
    arrays["LAST_TIME"] = sums.last_time
    return arrays


#: The list column of each entity's per-day first fraud times (kinds with first_frauds).
FIRST_FRAUDS = "FIRST_FRAUDS"


def _columns_of(kind: Kind, sums: EntitySums | None, k: int) -> dict[str, pa.Array]:
    """`kind`'s columns for k rows: its sums, or nulls on the rows of another kind."""
    names = [f"{kind.prefix}_ID", *(f"{kind.prefix}_{n}" for n in _sum_columns(kind))]
    lists = [f"{kind.prefix}_{FIRST_FRAUDS}"] if kind.first_frauds else []
    if sums is None:
        return {**{name: pa.nulls(k) for name in names},
                **{name: pa.nulls(k, pa.list_(pa.int64())) for name in lists}}
    columns = {names[0]: _id_array(sums.ids)}
    columns.update({f"{kind.prefix}_{name}": pa.array(values)
                    for name, values in _sum_arrays(kind, sums).items()})
    if kind.first_frauds:
        positions, times = sums.first_frauds
        offsets = np.concatenate(([0], np.cumsum(np.bincount(positions, minlength=k))))
        columns[lists[0]] = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()),
                                                     pa.array(times, pa.int64()))
    return columns


#: The rows of the card inputs' `HighRows` (after the kinds': id, day and count).
HIGH_ROWS = "H"


def _high_row_columns(high_rows: HighRows) -> dict[str, pa.Array]:
    return {f"{HIGH_ROWS}_ID": _id_array(high_rows.ids),
            f"{HIGH_ROWS}_DAY": pa.array(high_rows.days, pa.int64()),
            f"{HIGH_ROWS}_COUNT": pa.array(high_rows.counts, pa.int64())}


def _id_array(ids: np.ndarray) -> pa.Array:
    try:
        return pa.array(ids, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DatasetValidationError(
            f"entity ids of mixed types cannot be stored in the feature state: {exc}") from exc


def to_parquet(state: FeatureState) -> bytes:
    """The state as Parquet bytes: the same state always gives the same bytes.

    One file, one row per entity of each kind (customers ``C``, customers' delayed windows
    ``D``, terminals ``T``, stacked in that order): a row has its id in ``<kind>_ID`` and
    its sums in the ``<kind>_`` columns; the other kinds' columns are null. The day, the
    rows per kind and the inputs record sit in the key-value metadata.
    """
    own = {kind.prefix: _columns_of(kind, state.of(kind), len(state.of(kind).ids))
           for kind in state.kinds}
    rows = {kind.prefix: len(state.of(kind).ids) for kind in state.kinds}
    if state.high_rows is not None:  # the card inputs' chains only: other files unchanged
        own[HIGH_ROWS] = _high_row_columns(state.high_rows)
        rows[HIGH_ROWS] = len(state.high_rows.ids)
    # An empty kind's ids have no type of their own; any type holds its nulls.
    schema = pa.schema([(name, pa.int64() if array.type == pa.null() else array.type)
                        for columns in own.values() for name, array in columns.items()])
    record = {"format": STATE_FORMAT, "features_version": FEATURES_VERSION,
              "day": state.day.isoformat(),
              "rows": rows, "inputs": dict(sorted(state.inputs.items()))}
    if state.cards:
        record["cards"] = True
    schema = schema.with_metadata(
        {STATE_METADATA_KEY: json.dumps(record, sort_keys=True).encode()})
    sink = io.BytesIO()
    # Dictionaries and statistics help nobody here (the file is read whole) and cost a
    # third of the write. lz4 over byte-stream-split columns writes and reads a 100k-day
    # state in 0.028 + 0.015 s against zstd's 0.050 + 0.033 s, for a file ~1.5x larger (5.1 MB
    # against 3.4 MB at 100k; ids, which may be strings, and the lists are not split).
    split = [name for name in schema.names if not name.endswith(("_ID", FIRST_FRAUDS))]
    # One row group per kind, each padded with the other kinds' nulls only while it is
    # written: padding all kinds at once cost ~0.4 GB of peak memory at 1M transactions.
    # The padding is one null array per type, sliced to each kind's rows: a fresh one per
    # column cost another ~0.3 GB of zeroed memory.
    most = max(rows.values())
    nulls = {arrow_type: pa.nulls(most, arrow_type)
             for arrow_type in dict.fromkeys(schema.types)}
    with pq.ParquetWriter(sink, schema, compression="lz4", use_byte_stream_split=split,
                          use_dictionary=False, write_statistics=False) as writer:
        for prefix, k in rows.items():
            columns = own[prefix]
            writer.write_table(pa.Table.from_arrays(
                [columns[f.name].cast(f.type) if f.name in columns
                 else nulls[f.type].slice(0, k) for f in schema], schema=schema))
    return sink.getvalue()


def from_parquet(data: bytes | pa.Buffer, what: str) -> FeatureState:
    """A state from `to_parquet`'s bytes.

    Raises:
        DatasetValidationError: `data` is not a state of this format and features version.
    """
    try:
        parquet = parquet_from_bytes(data)
        record = json.loads((parquet.schema_arrow.metadata or {})[STATE_METADATA_KEY])
    except (pa.ArrowException, OSError, KeyError, ValueError) as exc:
        raise DatasetValidationError(f"{what}: not a feature state file: {exc}") from exc
    if record.get("format") != STATE_FORMAT or record.get(
            "features_version") != FEATURES_VERSION:
        raise DatasetValidationError(
            f"{what}: feature state format {record.get('format')}, features version "
            f"{record.get('features_version')}; expected {STATE_FORMAT}, {FEATURES_VERSION}")
    sums, offset = {}, 0
    cards = bool(record.get("cards"))
    high_rows = None
    try:
        for kind in kinds(cards):
            rows = int(record["rows"][kind.prefix])
            sums[kind.prefix] = _sums_of(kind, _rows_of(parquet, offset, rows, kind.prefix))
            offset += rows
        if cards:
            part = _rows_of(parquet, offset, int(record["rows"][HIGH_ROWS]), HIGH_ROWS)
            high_rows = HighRows(
                ids=part.column(f"{HIGH_ROWS}_ID").to_pandas().to_numpy(),
                days=part.column(f"{HIGH_ROWS}_DAY").to_numpy().astype(np.int64, copy=False),
                counts=part.column(f"{HIGH_ROWS}_COUNT").to_numpy().astype(np.int64,
                                                                          copy=False))
    except (pa.ArrowException, OSError, KeyError, ValueError) as exc:
        raise DatasetValidationError(f"{what}: not a feature state file: {exc}") from exc
    return FeatureState(dt.date.fromisoformat(record["day"]), sums, dict(record["inputs"]),
                        high_rows)


def _rows_of(parquet: pq.ParquetFile, offset: int, rows: int, prefix: str) -> pa.Table:
    """The columns of kind `prefix` of the file's rows ``offset:offset + rows``.

    Only the row groups holding those rows are read, and only `kind`'s columns: the other
    kinds' columns there are null padding (`to_parquet` writes each kind in row groups of
    its own), and decoding them cost two thirds of reading the whole file.
    """
    columns = [name for name in parquet.schema_arrow.names if name.startswith(f"{prefix}_")]
    groups: list[int] = []
    start = first = 0
    for group in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        if start < offset + rows and offset < start + size:
            first = start if not groups else first
            groups.append(group)
        start += size
    if not groups:
        return parquet.schema_arrow.empty_table().select(columns)
    return parquet.read_row_groups(groups, columns=columns).slice(offset - first, rows)


def _sums_of(kind: Kind, part: pa.Table) -> EntitySums:
    """`kind`'s sums from its rows of the file (`_rows_of`)."""
    rows = part.num_rows
    arrays = {name: part.column(f"{kind.prefix}_{name}").to_numpy()
              for name in _sum_columns(kind)}
    ids = part.column(f"{kind.prefix}_ID").to_pandas().to_numpy()
    first_frauds = EntitySums.empty(kind, ids[:0]).first_frauds
    if kind.first_frauds:
        lists = part.column(f"{kind.prefix}_{FIRST_FRAUDS}").combine_chunks()
        lengths = lists.value_lengths().to_numpy(zero_copy_only=False)
        first_frauds = (np.repeat(np.arange(rows), lengths),
                        lists.flatten().to_numpy().astype(np.int64, copy=False))
    return EntitySums(
        ids=ids,
        counts={n: arrays[f"NB_TX_{n}"] for n in kind.carried},
        floats={(name, n): (arrays[f"{name}_HI_{n}"], arrays[f"{name}_LO_{n}"])
                for name in kind.floats for n in kind.carried},
        ints={(name, n): arrays[f"{name}_{n}"] for name in kind.ints
              for n in kind.carried},
        last_time=arrays["LAST_TIME"],
        first_frauds=first_frauds,
    )
