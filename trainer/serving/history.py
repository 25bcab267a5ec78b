"""The days before the serving day, as the arrival path reads them, prepared for queries.

For serving day S the history is days S-37 .. S-1 (``HISTORY_DAYS``; S-50 .. S-1,
``CARD_HISTORY_DAYS``, for a learner that reads the card inputs), each read by
`trainer.arrival.day_transactions` (its training dataset, else its arrived rows with the
labels known so far, a missing label counting as genuine): the rows an arrival scoring of
S reads. A day the service served itself and whose file has not arrived yet (yesterday,
just after midnight) is taken from the intraday store instead, unlabelled: the same rows
its file will hold when the bank sends what was authorised.

The history is fixed for the serving day and prepared once for its queries
(`trainer.features.prepared.prepare_history`: entity codes, (entity, time) orders, exact
prefix sums): a transaction's features are then a few lookups in it plus its card's rows
of S, the query arrival scoring runs over a whole day. So that the day roll does not
prepare 37 days while the new day's requests wait, the next day's history can come in two
parts, read together as `PreparedParts`: the carried part, days S-37 .. S-2, known before
S's midnight and prepared ahead (`prepare_carried`, in the service's background thread),
and day S-1, the day just served, prepared at the roll (`prepare_last`: one day's rows).
For the card inputs each part also flags its rows of S's span (days S-13 .. S-1) against
their clean means (`trainer.features.prepared.CardSums`): day S-1's read the carried part.
A query over two parts costs about twice the lookups (~0.2 ms more per transaction at
default size); the day after a roll is served from its two parts all the same (preparing
them again as one, ~0.4 s of CPU at default size, competed with the new day's first
answers). The features are the same either way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainer.arrival import day_transactions
from trainer.features.cards import CARD_HISTORY_DAYS, SPAN_DAYS
from trainer.features.compute import HISTORY_DAYS, INPUT_COLUMNS, NS_PER_DAY
from trainer.features.prepared import PreparedHistory, PreparedParts, prepare_history
from trainer.serving.intraday import Intraday, Row
from trainer.share.layout import Share

#: Id columns whose kind (int or text) the history tells the request parser.
ID_COLUMNS = ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID")
#: Served days whose rows the intraday store still holds (the serving day, the two before).
SERVED_DAYS_KEPT = 2


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


@dataclass(frozen=True)
class HistoryPart:
    """Some history days of a serving day, prepared."""

    prepared: PreparedHistory
    days: list[dt.date]
    """The days the part covers, oldest first."""
    file_days: list[dt.date]
    """Those read from the share."""
    served_days: list[dt.date]
    """Those taken from the intraday store (served here, no file yet)."""
    missing: list[dt.date]
    """Those with neither a file nor recorded rows (their windows see nothing)."""
    kinds: dict[str, frozenset[str]]
    """Per id column: the kinds ("int", "text") of the rows that hold it."""


def prepare_part(share: Share, day: dt.date, days: list[dt.date], intraday: Intraday, *,
                 cards: bool = False, earlier: tuple[PreparedHistory, ...] = ()) -> HistoryPart:
    """History days `days` (consecutive, oldest first) of serving day `day`, prepared.

    With `cards`, for the card inputs too: `earlier` are the parts before these days.
    """
    parts: list[dict[str, np.ndarray]] = []
    file_days, served_days, missing = [], [], []
    for d in days:
        frame = day_transactions(share, d)
        if frame is not None:
            parts.append(columns_of(frame))
            file_days.append(d)
            continue
        rows = intraday.day_rows(d) if (day - d).days <= SERVED_DAYS_KEPT else []
        if rows:
            parts.append(row_columns(rows))
            served_days.append(d)
        else:
            missing.append(d)
    kinds = {column: frozenset("int" if part[column].dtype == np.int64 else "text"
                               for part in parts if len(part[column]))
             for column in ID_COLUMNS}
    end = pd.Timestamp(days[-1] + dt.timedelta(days=1)).as_unit("ns").value
    columns = join_columns(parts or [row_columns([])])
    if cards:
        span_ns = pd.Timestamp(day).as_unit("ns").value - SPAN_DAYS * NS_PER_DAY
        prepared = prepare_history(columns, end, cards_from_ns=span_ns, earlier=earlier)
    else:
        prepared = prepare_history(columns, end)
    return HistoryPart(prepared, days, file_days, served_days, missing, kinds)


def carried_days(day: dt.date, cards: bool = False) -> list[dt.date]:
    """The history days of serving day `day` known before its midnight: all but the last."""
    return history_days(day, cards)[:-1]


def prepare_carried(share: Share, day: dt.date, intraday: Intraday,
                    cards: bool = False) -> HistoryPart:
    """Days `day`-37 (`day`-50 with `cards`) .. `day`-2 of serving day `day`: ahead."""
    return prepare_part(share, day, carried_days(day, cards), intraday, cards=cards)


def prepare_last(share: Share, day: dt.date, intraday: Intraday,
                 carried: HistoryPart) -> HistoryPart:
    """Day `day`-1 of serving day `day`: the day just served, prepared at the roll.

    For the card inputs when `carried` was (its rows' clean means read it).
    """
    if carried.prepared.cards is None:
        return prepare_part(share, day, history_days(day)[-1:], intraday)
    return prepare_part(share, day, history_days(day)[-1:], intraday, cards=True,
                        earlier=(carried.prepared,))


@dataclass
class History:
    """The history of serving day `day`, in one prepared part or in several (time order)."""

    day: dt.date
    parts: tuple[HistoryPart, ...]
    prepared: PreparedHistory | PreparedParts = field(init=False)
    """Every history row, prepared for the day's queries."""

    def __post_init__(self) -> None:
        self.prepared = (self.parts[0].prepared if len(self.parts) == 1
                         else PreparedParts(tuple(part.prepared for part in self.parts)))

    @property
    def missing(self) -> list[dt.date]:
        """History days with neither a file nor recorded rows."""
        return [d for part in self.parts for d in part.missing]

    @property
    def file_days(self) -> list[dt.date]:
        """The history days read from the share."""
        return [d for part in self.parts for d in part.file_days]

    @property
    def served_days(self) -> list[dt.date]:
        """The history days taken from the intraday store."""
        return [d for part in self.parts for d in part.served_days]

    def id_kinds(self) -> dict[str, str | None]:
        """Per id column: "int", "text" or None (no history to tell)."""
        out: dict[str, str | None] = {}
        for column in ID_COLUMNS:
            kinds = frozenset().union(*(part.kinds[column] for part in self.parts))
            out[column] = None if not kinds else "int" if kinds == {"int"} else "text"
        return out


def history_days(day: dt.date, cards: bool = False) -> list[dt.date]:
    """The days before `day` its features read, oldest first (more with `cards`)."""
    back = CARD_HISTORY_DAYS if cards else HISTORY_DAYS
    return [day - dt.timedelta(days=b) for b in range(back, 0, -1)]


def load_history(share: Share, day: dt.date, intraday: Intraday,
                 carried: HistoryPart | None = None, cards: bool = False) -> History:
    """Serving day `day`'s history: its 37 (`cards`: 50) days as one part, or `carried` + 1.

    One part costs a full preparation and answers each query with one set of lookups (a
    load, a reload); the roll, with the carried part prepared ahead, prepares only the day
    just served, and the day is served from the two parts.
    """
    if carried is None:
        return History(day, (prepare_part(share, day, history_days(day, cards), intraday,
                                          cards=cards),))
    if carried.days != carried_days(day, cards) or (carried.prepared.cards is None) == cards:
        raise ValueError(f"a carried part of {carried.days[0]} .. {carried.days[-1]} is not "
                         f"serving day {day}'s")
    return History(day, (carried, prepare_last(share, day, intraday, carried)))
