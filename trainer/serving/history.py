"""The days before the serving day, as the arrival path reads them, indexed by entity.

For serving day S the history is days S-37 .. S-1 (``HISTORY_DAYS``), each read by
`trainer.arrival.day_transactions` (its training dataset, else its arrived rows with the
labels known so far, a missing label counting as genuine): the rows an arrival scoring of
S reads. A day the service served itself and whose file has not arrived yet (yesterday,
just after midnight) is taken from the intraday store instead, unlabelled: the same rows
its file will hold when the bank sends what was authorised.

A transaction's features read its card's and its terminal's rows only, so the history is
indexed by CUSTOMER_ID and TERMINAL_ID: the context of one transaction is a few hundred
rows, not the 37 days.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainer.arrival import day_transactions
from trainer.features.compute import HISTORY_DAYS, INPUT_COLUMNS
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
    """Rows of some history days, with each card's and terminal's row positions."""

    frame: pd.DataFrame
    days: list[dt.date]
    by_card: dict = field(init=False)
    by_terminal: dict = field(init=False)
    columns: dict[str, np.ndarray] = field(init=False)
    """``INPUT_COLUMNS`` as numpy arrays (TX_DATETIME as int64 ns; text ids as objects)."""

    def __post_init__(self) -> None:
        self.columns = columns_of(self.frame)
        positions = pd.Series(np.arange(len(self.frame)))
        self.by_card = positions.groupby(self.frame["CUSTOMER_ID"].to_numpy()).indices
        self.by_terminal = positions.groupby(self.frame["TERMINAL_ID"].to_numpy()).indices

    def positions(self, card: object, terminal: object) -> np.ndarray:
        """The positions of the rows of `card` or `terminal` (each once, in order)."""
        mine = self.by_card.get(card)
        theirs = self.by_terminal.get(terminal)
        if mine is None and theirs is None:
            return np.array([], np.int64)
        if theirs is None:
            return np.asarray(mine)
        if mine is None:
            return np.asarray(theirs)
        return np.union1d(mine, theirs)

    def of(self, card: object, terminal: object) -> pd.DataFrame:
        """The rows of `card` or `terminal` (each once)."""
        return self.frame.iloc[self.positions(card, terminal)]


@dataclass
class History:
    """The history of serving day `day`: segments of days from files and from the store."""

    day: dt.date
    segments: list[Segment]
    missing: list[dt.date]
    """History days with neither a file nor recorded rows (their windows see nothing)."""

    def context_columns(self, card: object, terminal: object) -> dict[str, np.ndarray]:
        """`context` as numpy columns (see `Segment.columns`)."""
        parts = []
        for segment in self.segments:
            rows = segment.positions(card, terminal)
            parts.append({name: values[rows] for name, values in segment.columns.items()})
        return join_columns(parts)

    def context(self, card: object, terminal: object) -> pd.DataFrame:
        """The history rows a transaction of `card` at `terminal` can read."""
        parts = [segment.of(card, terminal) for segment in self.segments]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    @functools.cached_property
    def all_columns(self) -> dict[str, np.ndarray]:
        """Every history row as ``columns_of`` arrays (for a batch), joined once."""
        return join_columns([segment.columns for segment in self.segments])

    def all_rows(self) -> pd.DataFrame:
        """Every history row (for a batch)."""
        frames = [segment.frame for segment in self.segments]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def id_kinds(self) -> dict[str, str | None]:
        """Per id column: "int", "text" or None (no history to tell)."""
        kinds: dict[str, str | None] = {}
        for column in ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID"):
            dtypes = {str(segment.frame[column].dtype) for segment in self.segments
                      if len(segment.frame)}
            kinds[column] = (None if not dtypes else "int" if dtypes == {"int64"}
                             else "text")
        return kinds

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
