"""The days before the serving day, as the arrival path reads them, prepared for queries.

For serving day S the history is days S-37 .. S-1 (``HISTORY_DAYS``), each read by
`trainer.arrival.day_transactions` (its training dataset, else its arrived rows with the
labels known so far, a missing label counting as genuine): the rows an arrival scoring of
S reads. A day the service served itself and whose file has not arrived yet (yesterday,
just after midnight) is taken from the intraday store instead, unlabelled: the same rows
its file will hold when the bank sends what was authorised.

The history is fixed for the serving day, so it is prepared once when the day is loaded
(`trainer.features.prepared.prepare_history`: entity codes, (entity, time) orders, exact
prefix sums): a transaction's features are then a few lookups in it plus its card's rows
of S, the query arrival scoring runs over a whole day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainer.arrival import day_transactions
from trainer.features.compute import HISTORY_DAYS, INPUT_COLUMNS
from trainer.features.prepared import PreparedHistory, prepare_history
from trainer.serving.intraday import Intraday, Row
from trainer.share.layout import Share


def rows_frame(rows: list[Row]) -> pd.DataFrame:
    """Recorded rows as a frame of ``INPUT_COLUMNS`` (TX_FRAUD 0: no label yet)."""
    columns = row_columns(rows)
    columns["TX_DATETIME"] = columns["TX_DATETIME"].view("datetime64[ns]")
    return pd.DataFrame(columns)


def columns_of(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """A frame's ``INPUT_COLUMNS`` as numpy arrays; text ids as object arrays of str."""
    columns = {}
    for name in INPUT_COLUMNS:
        values = frame[name]
        if name == "TX_DATETIME":
            columns[name] = values.to_numpy().astype("datetime64[ns]").view(np.int64)
        elif pd.api.types.is_integer_dtype(values) or name == "TX_AMOUNT":
            columns[name] = values.to_numpy()
        else:
            columns[name] = values.to_numpy(dtype=object)
    return columns


def row_columns(rows: list[Row]) -> dict[str, np.ndarray]:
    """Recorded rows as ``columns_of`` arrays (TX_FRAUD 0: no label yet)."""
    tx, times, cards, terminals, amounts = zip(*rows, strict=True) if rows else ((),) * 5
    return {"TRANSACTION_ID": _ids(tx), "TX_DATETIME": np.array(times, np.int64),
            "CUSTOMER_ID": _ids(cards), "TERMINAL_ID": _ids(terminals),
            "TX_AMOUNT": np.array(amounts, np.float64),
            "TX_FRAUD": np.zeros(len(rows), np.int64)}


def join_columns(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Columns of several row sets, one after the other (ids of mixed types as objects)."""
    if len(parts) == 1:
        return parts[0]
    joined = {}
    for name in INPUT_COLUMNS:
        arrays = [part[name] for part in parts if len(part[name])]
        if not arrays:
            joined[name] = parts[0][name]
        elif len({a.dtype for a in arrays}) > 1 and name not in ("TX_DATETIME",
                                                                  "TX_AMOUNT", "TX_FRAUD"):
            joined[name] = np.concatenate([a.astype(object) for a in arrays])
        else:
            joined[name] = np.concatenate(arrays)
    return joined


def _ids(values: tuple) -> np.ndarray:
    """Ids as int64 when every one is an int, else as an object array (text ids)."""
    try:
        if all(type(v) is int for v in values[:1]):
            return np.fromiter(values, np.int64, len(values))
    except TypeError:  # a text id after int ones
        pass
    return np.array(values, dtype=object)


@dataclass
class Segment:
    """Rows of some history days (emptied once a `History` has prepared them)."""

    frame: pd.DataFrame
    days: list[dt.date]


@dataclass
class History:
    """The history of serving day `day`: segments of days from files and from the store."""

    day: dt.date
    segments: list[Segment]
    missing: list[dt.date]
    """History days with neither a file nor recorded rows (their windows see nothing)."""
    prepared: PreparedHistory = field(init=False)
    """Every history row, prepared for the day's queries."""
    kinds: dict[str, str | None] = field(init=False)
    """Per id column: "int", "text" or None (no history to tell)."""

    def __post_init__(self) -> None:
        start = pd.Timestamp(self.day).as_unit("ns").value
        self.prepared = prepare_history(
            join_columns([columns_of(segment.frame) for segment in self.segments]), start)
        self.kinds = {}
        for column in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"):
            dtypes = {str(segment.frame[column].dtype) for segment in self.segments
                      if len(segment.frame)}
            self.kinds[column] = (None if not dtypes else "int" if dtypes == {"int64"}
                                  else "text")
        for segment in self.segments:  # prepared: the raw rows are not read again
            segment.frame = segment.frame.iloc[:0]

    def id_kinds(self) -> dict[str, str | None]:
        """Per id column: "int", "text" or None (no history to tell)."""
        return self.kinds

    @property
    def file_days(self) -> list[dt.date]:
        """The history days read from the share."""
        return self.segments[0].days


def history_days(day: dt.date) -> list[dt.date]:
    """The days before `day` its features read, oldest first."""
    return [day - dt.timedelta(days=back) for back in range(HISTORY_DAYS, 0, -1)]


def file_segment(share: Share, day: dt.date) -> Segment:
    """The history days of serving day `day` that the share has, as one segment."""
    frames, days = [], []
    for d in history_days(day):
        frame = day_transactions(share, d)
        if frame is not None:
            frames.append(frame[INPUT_COLUMNS])
            days.append(d)
    frame = (pd.concat(frames, ignore_index=True) if frames else rows_frame([]))
    return Segment(frame, days)


def load_history(share: Share, day: dt.date, intraday: Intraday,
                 files: Segment | None = None) -> History:
    """Serving day `day`'s history: `files` (default: read now) plus the served days."""
    files = files if files is not None else file_segment(share, day)
    segments, missing = [files], []
    held = set(files.days)
    for d in history_days(day):
        if d in held:
            continue
        rows = intraday.day_rows(d) if (day - d).days <= 2 else []
        if rows:
            segments.append(Segment(rows_frame(rows), [d]))
        else:
            missing.append(d)
    return History(day, segments, missing)
