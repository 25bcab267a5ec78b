"""A day's features from its history prepared once: per-target queries, online and on arrival.

The features of a transaction of day D (`trainer.features.compute`'s 15 and
`trainer.features.profiles`' extra inputs) read two kinds of rows: the history, every
row before D's midnight (the 37 days before D), and its card's rows of D up to itself
(terminal windows end 7 days back, so the terminal side is history only). The history is
fixed for the whole day, so everything the windows need from it is computed once
(`prepare_history`): entity codes, the rows in (entity, time) order with their time
ranks as search keys, exact prefix sums of the amounts and their squares, prefix counts
of the labels and the times of the frauds. A target then costs a few binary searches per
window plus its card's rows of D (`DayRows`), so one transaction costs a handful of array
lookups and a batch costs in proportion to its own rows, not to the 37 days.

The card inputs (`trainer.features.cards`, ``cards=True``) read 50 days: each row of the
span's whole days D-13 .. D-1 is flagged high or not against its own clean mean when its
history part is prepared (``cards_from_ns``, `CardSums`), and each card's rows of the
span summed there (count, exact amount sum, high rows), so a target adds one gather per
part and, for its card's rows of D at an earlier time, their clean means (two searches
each, in the history: a clean window ends 7 days back) and the day's double-double sums.

`fraudpipe serve` (one transaction, or a batch) and arrival scoring (a whole day,
`trainer.arrival`) both call `day_features`: online equals offline by construction.
The history may come in time-ordered parts (`PreparedParts`): the service prepares the
days before yesterday ahead of its midnight and only the day it has just served at the
roll; each window's counts and double-double sums are the parts' added.

Exact sums: a window's amount sum is its history part (a difference of the history's
double-double prefix sums, `trainer.features.exact_sums`) plus its card's rows of D (a
double-double prefix restarting at 0 on each card, the same whether D's other cards are
there or not), added as double-doubles and rounded once. While the double-double
arithmetic is exact (its low parts are sums of rounding errors, far inside 53 bits for
money amounts), that is the correctly rounded exact sum, the value the raw-history
computation of `compute` and `profiles` gives from any context: tests compare them bit
for bit. Over parts, each part's window sum is added as a double-double before the card's
rows, so the sum stays exact and rounds once to the same value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainer.errors import DatasetValidationError
from trainer.features.cards import CARD_FEATURE_COLUMNS, SPAN_DAYS, card_columns, high
from trainer.features.compute import (
    FEATURE_COLUMNS,
    INPUT_COLUMNS,
    NS_PER_DAY,
    TERMINAL_DELAY_DAYS,
    calendar_columns,
    checked_inputs,
    day_bounds_ns,
    entity_order,
    features_frame,
    nanoseconds,
    tie_keys,
    time_order,
)
from trainer.features.exact_sums import dd_add, prefix_sums, range_sums, rounded, two_sum
from trainer.features.profiles import (
    EXTRA_FEATURE_COLUMNS,
    LABEL_DELAY_DAYS,
    LOOKBACK_DAYS,
    amount_profile,
    days_since,
    seconds_since,
    share,
)

#: Days back from a target's time where its windows start or end: for customers 1, 7, 30
#: (the handbook's windows, the profiles' 7 and 30) and 37 (with 7: the delayed risk
#: window); for terminals 7 (the end of every delayed window), 8, 14 and 37 (their starts).
BACK_DAYS = (1, 7, 30, LOOKBACK_DAYS,
             TERMINAL_DELAY_DAYS, TERMINAL_DELAY_DAYS + 1, TERMINAL_DELAY_DAYS + 7,
             TERMINAL_DELAY_DAYS + 30)
_BACK_NS = np.array(BACK_DAYS, np.int64) * NS_PER_DAY
assert LABEL_DELAY_DAYS == TERMINAL_DELAY_DAYS and LOOKBACK_DAYS == TERMINAL_DELAY_DAYS + 30


@dataclass(frozen=True)
class _Entities:
    """The history rows of one entity kind in (entity, time) order."""

    ids: pd.Index
    """Entity id by code."""
    keys: np.ndarray
    """``code * rows + time rank`` of each row, sorted: an entity's window is a range."""
    order: np.ndarray
    """The rows (in time order) in key order."""
    fraud_sums: np.ndarray
    """Prefix sums of TX_FRAUD in key order, with a leading 0."""
    last_time: np.ndarray | None = None
    """Customers: the time of each entity's last row, by code."""
    fraud_counts: np.ndarray | None = None
    """Terminals: prefix counts of the fraud rows in key order, with a leading 0."""
    fraud_times: np.ndarray | None = None
    """Terminals: the times of the fraud rows, in key order."""

    def codes_of(self, ids: np.ndarray) -> np.ndarray:
        """The codes of `ids`; -1 for an entity the history does not hold."""
        if len(ids) == 1:  # one transaction: a hash lookup, not an indexer
            try:
                return np.array([self.ids.get_loc(ids[0])], np.int64)
            except (KeyError, TypeError):
                return np.array([-1], np.int64)
        return self.ids.get_indexer(ids).astype(np.int64, copy=False)

    def positions(self, codes: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """Positions of the first row of each entity whose time rank is >= `ranks`.

        `ranks` (targets x bounds) counts the history rows at or before each bound; the
        positions are where each window starts (or ends) in key order.
        """
        return _searched(self.keys, codes[:, None] * max(len(self.keys), 1) + ranks, "left")


#: Queries from this many on are searched in sorted order.
SORTED_QUERIES = 4096


def _searched(values: np.ndarray, queries: np.ndarray, side: str) -> np.ndarray:
    """``np.searchsorted(values, queries, side)``; many queries are sorted first.

    Sorted queries let each binary search start from the previous answer, and walk the
    large history arrays in order instead of at random (a batch's cost is mostly
    cache misses otherwise); the answers are the same.
    """
    if queries.size < SORTED_QUERIES:
        return np.searchsorted(values, queries, side=side)  # type: ignore[call-overload]
    flat = queries.ravel()
    order = np.argsort(flat, kind="stable")
    found = np.empty(flat.shape, np.int64)
    found[order] = np.searchsorted(values, flat[order], side=side)  # type: ignore[call-overload]
    return found.reshape(queries.shape)


def _entities(ids: np.ndarray, times: np.ndarray, frauds: np.ndarray, *,
              customers: bool) -> _Entities:
    """`_Entities` of rows already in (time, transaction id) order."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=False)
    codes = codes.astype(np.int64, copy=False)
    order, keys = entity_order(codes, len(uniques))
    fraud_sums = np.concatenate(([0.0], np.cumsum(frauds[order])))
    if customers:
        last = np.searchsorted(keys, (np.arange(len(uniques)) + 1) * max(len(times), 1)) - 1
        return _Entities(pd.Index(uniques), keys, order, fraud_sums,
                         last_time=times[order[last]])
    flags = frauds[order] > 0
    return _Entities(pd.Index(uniques), keys, order, fraud_sums,
                     fraud_counts=np.concatenate(([0], np.cumsum(flags))),
                     fraud_times=times[order][flags])


@dataclass(frozen=True)
class PreparedHistory:
    """Every row before `before_ns`, prepared for the windows of later transactions."""

    before_ns: int
    """Midnight of the day the history serves: every row is earlier."""
    times: np.ndarray
    """The rows' times in (time, transaction id) order: a bound's rank is a search here."""
    customers: _Entities
    terminals: _Entities
    sums: tuple[np.ndarray, np.ndarray]
    """Exact prefix sums (`exact_sums.prefix_sums`, each with its leading 0) one after the
    other: the customers' amounts and squared amounts, the terminals' amounts, each in its
    entities' key order (so every window sum of a target is one gather)."""
    cards: CardSums | None = None
    """What the card inputs read, when prepared for them (``cards_from_ns``)."""

    @property
    def rows(self) -> int:
        """How many history rows."""
        return len(self.times)


@dataclass(frozen=True)
class CardSums:
    """A history part's sums for the card inputs (`trainer.features.cards`) of one day."""

    genuine_rows: np.ndarray
    """Prefix counts of the genuine rows (TX_FRAUD 0) in the customers' key order, with a
    leading 0: a clean mean's count."""
    genuine_sums: tuple[np.ndarray, np.ndarray]
    """Exact prefix sums of their amounts, the same way: a clean mean's total."""
    span_ns: int
    """The midnight 13 days before the day served: the span's history starts there."""
    span_rows: np.ndarray
    """By customer code: its rows in the part from `span_ns` on ..."""
    span_high: np.ndarray
    """... how many of them are high, each against its own clean mean ..."""
    span_sums: tuple[np.ndarray, np.ndarray]
    """... and their exact amount sum (hi, lo)."""


def prepare_history(columns: dict[str, np.ndarray], before_ns: int, *,
                    cards_from_ns: int | None = None,
                    earlier: tuple[PreparedHistory, ...] = ()) -> PreparedHistory:
    """The history of the day starting at `before_ns`, prepared (see the module doc).

    Args:
        columns: ``INPUT_COLUMNS`` as arrays (TX_DATETIME as int64 ns or datetime64,
            no missing amount or label), every row earlier than `before_ns`.
        before_ns: Midnight of the day whose transactions will be queried.
        cards_from_ns: Also prepare the card inputs' sums (`CardSums`) of the day whose
            span starts at this time (its midnight - ``SPAN_DAYS`` days).
        earlier: With `cards_from_ns`, the parts before this one (prepared for the cards):
            a row's clean mean reads back 37 days, maybe into them.

    Raises:
        DatasetValidationError: A row is not earlier than `before_ns`.
    """
    times = np.asarray(columns["TX_DATETIME"]).astype("datetime64[ns]").view(np.int64)
    if len(times) and int(times.max()) >= before_ns:
        late = int(np.count_nonzero(times >= before_ns))
        raise DatasetValidationError(
            f"history: {late} row(s) at or after {pd.Timestamp(before_ns)}; expected every "
            f"history row before the day its features are for")
    ids = tie_keys(np.asarray(columns["TRANSACTION_ID"]))
    by_time = time_order(times, ids)

    def in_time_order(values: np.ndarray) -> np.ndarray:
        return values if by_time is None else values[by_time]

    times = in_time_order(times)
    amounts = in_time_order(np.asarray(columns["TX_AMOUNT"], dtype=np.float64))
    frauds = in_time_order(np.asarray(columns["TX_FRAUD"], dtype=np.float64))
    customers = _entities(in_time_order(np.asarray(columns["CUSTOMER_ID"])), times, frauds,
                          customers=True)
    terminals = _entities(in_time_order(np.asarray(columns["TERMINAL_ID"])), times, frauds,
                          customers=False)
    parts = [prefix_sums(amounts[customers.order]),
             prefix_sums((amounts**2)[customers.order]),
             prefix_sums(amounts[terminals.order])]
    sums = (np.concatenate([hi for hi, _ in parts]), np.concatenate([lo for _, lo in parts]))
    history = PreparedHistory(before_ns, times, customers, terminals, sums)
    return history if cards_from_ns is None else _with_card_sums(
        history, amounts[customers.order], frauds[customers.order] == 0, cards_from_ns, earlier)


#: The clean mean's window, (t - 37 days, t - 7 days], as its bounds back from t.
_CLEAN_NS = np.array([LOOKBACK_DAYS, LABEL_DELAY_DAYS], np.int64) * NS_PER_DAY


def _with_card_sums(history: PreparedHistory, amounts: np.ndarray, genuine: np.ndarray,
                    span_ns: int, earlier: tuple[PreparedHistory, ...]) -> PreparedHistory:
    """`history` with its `CardSums`; `amounts` and `genuine` in the customers' key order.

    Each row from `span_ns` on is flagged against its own clean mean: its window ends 7
    days before it, so it reads the earlier parts and this one's earlier rows only. The
    span is the same for every target of the day, so each customer's is summed here once.
    """
    none = np.zeros(0, np.int64)
    cards = CardSums(np.concatenate(([0], np.cumsum(genuine))),
                     prefix_sums(np.where(genuine, amounts, 0.0)), span_ns, none, none,
                     (none, none))
    history = dataclasses.replace(history, cards=cards)  # its clean means read itself
    customers = history.customers
    times = history.times[customers.order]
    flagged = np.flatnonzero(times >= span_ns)
    ids = customers.ids[customers.keys[flagged] // max(history.rows, 1)].to_numpy()
    flags = np.zeros(history.rows, bool)
    flags[flagged] = high(amounts[flagged],
                          _clean_means((*earlier, history), times[flagged], ids))
    high_rows = np.concatenate(([0], np.cumsum(flags)))
    span_rank = int(np.searchsorted(history.times, span_ns, side="left"))
    at = customers.positions(np.arange(len(customers.ids)),
                             np.array([span_rank, history.rows], np.int64))
    start, end = at[:, 0], at[:, 1]
    # the customers' amounts are the first block of the joined prefix sums
    return dataclasses.replace(history, cards=dataclasses.replace(
        cards, span_rows=end - start, span_high=high_rows[end] - high_rows[start],
        span_sums=range_sums(*history.sums, start, end)))


def _card_sums(part: PreparedHistory) -> CardSums:
    if part.cards is None:
        raise ValueError("the card inputs need a history prepared for them "
                         "(prepare_history(..., cards_from_ns=...))")
    return part.cards


def _clean_means(parts: tuple[PreparedHistory, ...], t: np.ndarray,
                 ids: np.ndarray) -> np.ndarray:
    """The clean means (`trainer.features.cards`) of customers `ids` at times `t`.

    Window counts added and sums added as double-doubles over the parts, rounded once.
    """
    count = np.zeros(len(t), np.int64)
    total: tuple[np.ndarray, np.ndarray] | None = None
    for part in parts:
        cards = _card_sums(part)
        ranks = _searched(part.times, t[:, None] - _CLEAN_NS, "right")
        at = part.customers.positions(part.customers.codes_of(ids), ranks)
        count += cards.genuine_rows[at[:, 1]] - cards.genuine_rows[at[:, 0]]
        sums = range_sums(*cards.genuine_sums, at[:, 0], at[:, 1])
        total = sums if total is None else dd_add(*total, *sums)
    assert total is not None
    return share(rounded(*total), count)


@dataclass(frozen=True)
class DayRows:
    """Rows of the day being served or scored, with each row's card part of its windows.

    Arrays are aligned with the rows as given. A row's card part is over its card's rows
    of the day up to it in (time, transaction id) order: exact prefix sums restarting at 0
    on each card, so they are the same whichever other cards' rows are present.
    """

    times: np.ndarray
    cards: np.ndarray
    terminals: np.ndarray
    amounts: np.ndarray
    rank: np.ndarray
    """How many rows of the same card come before the row."""
    sums: np.ndarray
    """(6 x rows) double-double (hi, lo) sums over the card's rows: of the amounts through
    the row (itself included), of the amounts before it, of the squared amounts before it."""
    previous_time: np.ndarray
    """The time of the card's previous row (the row's own time when it is the first)."""
    order: np.ndarray
    """The rows in (card, time, transaction id) order."""


def _time_id_order(times: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row numbers in (time, transaction id) order (ids compared as they are: ints or text)."""
    if len(times) <= 32:  # one card's rows: a Python sort beats building tie keys
        return np.array(sorted(range(len(times)), key=lambda i: (times[i], ids[i])), np.int64)
    return np.lexsort((tie_keys(ids), times))


def _run_prefix_sums(values: np.ndarray, run: np.ndarray, rank: np.ndarray,
                     lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact prefix sums (``hi``, ``lo``) through each row, restarting at each run.

    `values` is (series x rows); `run` and `rank` place each row in its run (a card). The
    sums of a run are a row of a matrix summed along its last axis (numpy accumulates
    sequentially), so they do not depend on the other runs. Runs are grouped by length
    rounded up to a power of two, so the padded matrices hold at most twice the rows.
    """
    series, n = values.shape
    if len(lengths) == 1:  # one card: no padding
        groups = [(np.arange(n), np.zeros(n, np.int64), 1)]
    else:
        widths = np.left_shift(1, np.ceil(np.log2(lengths)).astype(np.int64))
        row_width = widths[run]
        groups = []
        for width in np.unique(widths):
            chosen = np.flatnonzero(widths == width)
            local = np.empty(len(lengths), np.int64)
            local[chosen] = np.arange(len(chosen))
            rows = np.flatnonzero(row_width == width)
            groups.append((rows, local[run[rows]], len(chosen)))
    hi, lo = np.empty((series, n)), np.empty((series, n))
    for rows, which, count in groups:
        place = rank[rows]
        matrix = np.zeros((series, count, int(place.max()) + 1))
        matrix[:, which, place] = values[:, rows]
        sums = np.cumsum(matrix, axis=2)
        before = np.zeros_like(sums)
        before[:, :, 1:] = sums[:, :, :-1]
        errors = np.cumsum(two_sum(before, matrix)[1], axis=2)
        hi[:, rows] = sums[:, which, place]
        lo[:, rows] = errors[:, which, place]
    return hi, lo


def day_rows(columns: dict[str, np.ndarray], *, one_card: bool = False) -> DayRows:
    """`DayRows` of the day's rows in `columns` (``INPUT_COLUMNS`` but TX_FRAUD).

    `one_card`: every row is of the same card (one transaction's own card rows), which
    saves grouping them.
    """
    times = np.asarray(columns["TX_DATETIME"]).astype("datetime64[ns]").view(np.int64)
    ids = np.asarray(columns["TRANSACTION_ID"])
    cards = np.asarray(columns["CUSTOMER_ID"])
    amounts = np.asarray(columns["TX_AMOUNT"], dtype=np.float64)
    n = len(times)
    if one_card:
        order = _time_id_order(times, ids)
        lengths = np.array([n], np.int64)
        run = np.zeros(n, np.int64)
        rank = np.arange(n, dtype=np.int64)
    else:
        codes = pd.factorize(cards, use_na_sentinel=False)[0]
        order = np.lexsort((tie_keys(ids), times, codes))
        sorted_codes = codes[order]
        first = np.ones(n, bool)
        first[1:] = sorted_codes[1:] != sorted_codes[:-1]
        starts = np.flatnonzero(first)
        lengths = np.diff(np.append(starts, n))
        run = np.cumsum(first) - 1
        rank = np.arange(n) - starts[run]
    in_order = amounts[order]
    hi, lo = _run_prefix_sums(np.stack([in_order, in_order**2]), run, rank, lengths)
    has_before = rank > 0
    previous = np.arange(n) - 1  # the card's previous row, where it has one
    through = np.stack([hi[0], lo[0]])
    before = np.where(has_before, np.stack([hi[0], lo[0], hi[1], lo[1]])[:, previous], 0.0)
    sorted_times = times[order]
    in_rows = np.empty(n, np.int64)  # the caller's row -> its sorted position
    in_rows[order] = np.arange(n)
    return DayRows(times, cards, np.asarray(columns["TERMINAL_ID"]), amounts, rank[in_rows],
                   np.concatenate([through, before])[:, in_rows],
                   np.where(has_before, sorted_times[previous], sorted_times)[in_rows], order)


#: Columns of `day_features`' window sums: which history window sum (of the 7 gathered)
#: and which card part (a row of ``DayRows.sums``, as (hi, lo) pairs) each adds.
_HISTORY_SUM = [0, 1, 2, 1, 2, 3, 4]  # amounts 1, 7, 30 days; again 7, 30; squares 7, 30
_DAY_SUM = [0, 0, 0, 2, 2, 4, 4]  # through the row; before it; squares before it


@dataclass(frozen=True)
class PreparedParts:
    """A history prepared in parts, each covering a later span of time than the one before.

    The service prepares the days its next day's history already holds (the carried part)
    ahead of midnight, and only the day it has just served at the roll: `day_features`
    reads the parts as one history (window counts and label counts added, window sums
    added as double-doubles, the latest row and fraud times taken from the part holding
    them), so the features equal those of the parts' rows prepared as one.
    """

    parts: tuple[PreparedHistory, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a history needs at least one part")
        for earlier, later in itertools.pairwise(self.parts):
            if later.before_ns < earlier.before_ns or (
                    later.rows and int(later.times[0]) < earlier.before_ns):
                raise DatasetValidationError(
                    f"history parts: a part ending at {pd.Timestamp(later.before_ns)} holds "
                    f"rows before {pd.Timestamp(earlier.before_ns)}, the end of the part "
                    f"before it; expected each part later than the previous one")

    @property
    def before_ns(self) -> int:
        """Midnight of the day the history serves (the last part's)."""
        return self.parts[-1].before_ns

    @property
    def rows(self) -> int:
        """How many history rows, over every part."""
        return sum(part.rows for part in self.parts)


@dataclass
class _Windows:
    """One history part's share of every target's windows (targets first in each array)."""

    counts: np.ndarray
    """Customer rows in the windows 1, 7, 30 and 37 days back (targets x 4)."""
    sums_hi: np.ndarray
    sums_lo: np.ndarray
    """Window sums as double-doubles (targets x 7): customers' amounts (1, 7, 30 days),
    their squares (7, 30), terminals' amounts (7, 30 days, delayed)."""
    t_counts: np.ndarray
    """Terminal rows in the delayed windows of 1, 7 and 30 days (targets x 3)."""
    t_frauds: np.ndarray
    """Frauds among them (targets x 3)."""
    c_frauds: np.ndarray
    """The customer's frauds in (t - 37 days, t - 7 days]."""
    c_delayed: np.ndarray
    """The customer's rows there."""
    has_customer: np.ndarray
    """Whether the part holds a row of the target's customer."""
    last_time: np.ndarray
    """The time of that customer's last row in the part (t where none)."""
    fraud_known: np.ndarray
    """Whether the part holds a fraud of the terminal in (t - 37 days, t - 7 days]."""
    fraud_last: np.ndarray
    fraud_first: np.ndarray
    """The times of the last and first of those frauds (t where none)."""

    def then(self, later: _Windows) -> _Windows:
        """The windows over this part and a `later` one (exact sums: double-doubles)."""
        sums = dd_add(self.sums_hi, self.sums_lo, later.sums_hi, later.sums_lo)
        return _Windows(
            self.counts + later.counts, *sums, self.t_counts + later.t_counts,
            self.t_frauds + later.t_frauds, self.c_frauds + later.c_frauds,
            self.c_delayed + later.c_delayed, self.has_customer | later.has_customer,
            np.where(later.has_customer, later.last_time, self.last_time),
            self.fraud_known | later.fraud_known,
            np.where(later.fraud_known, later.fraud_last, self.fraud_last),
            np.where(self.fraud_known, self.fraud_first, later.fraud_first))


def _part_windows(history: PreparedHistory, t: np.ndarray, cards: np.ndarray,
                  terminals_of: np.ndarray) -> _Windows:
    """Every window of the targets at times `t` over one prepared part (see `_Windows`)."""
    rows = history.rows
    ranks = _searched(history.times, t[:, None] - _BACK_NS, "right")
    # Customers: the history part of (t - n days, t] is its rows from the bound on; all of
    # them are before the day, so the window's history part ends at the entity's end.
    customers, terminals = history.customers, history.terminals
    codes = customers.codes_of(cards)
    at = customers.positions(codes, np.concatenate([ranks[:, :4], np.full((len(t), 1), rows)],
                                                   axis=1))
    starts, end = at[:, :4], at[:, 4:]
    t_at = terminals.positions(terminals.codes_of(terminals_of), ranks[:, 4:])
    delayed_end, t_starts = t_at[:, :1], t_at[:, 1:]  # starts: 8, 14, 37 days back
    # Every window sum: customers' amounts (1, 7, 30 days), their squares (7, 30),
    # terminals' amounts (7, 30): one gather from the joined prefix sums.
    offset = rows + 1
    low = np.concatenate([starts[:, :3], starts[:, 1:3] + offset,
                          t_starts[:, 1:] + 2 * offset], axis=1)
    high = np.concatenate([np.repeat(end, 3, axis=1), np.repeat(end + offset, 2, axis=1),
                           np.repeat(delayed_end + 2 * offset, 2, axis=1)], axis=1)
    sums_hi, sums_lo = range_sums(*history.sums, low, high)

    assert customers.last_time is not None
    assert terminals.fraud_counts is not None and terminals.fraud_times is not None
    has_customer = codes >= 0
    last_time = (np.where(has_customer, customers.last_time[np.maximum(codes, 0)], t)
                 if len(customers.last_time) else t)
    # The terminal's last and first known fraud in (t - 37 days, t - 7 days].
    frauds_to_end = terminals.fraud_counts[delayed_end[:, 0]]
    frauds_from_start = terminals.fraud_counts[t_starts[:, 2]]
    known = frauds_to_end > frauds_from_start
    fraud_times = terminals.fraud_times if len(terminals.fraud_times) else np.zeros(1, np.int64)
    last = len(fraud_times) - 1
    return _Windows(
        end - starts, sums_hi, sums_lo, delayed_end - t_starts,
        terminals.fraud_sums[delayed_end] - terminals.fraud_sums[t_starts],
        customers.fraud_sums[starts[:, 1]] - customers.fraud_sums[starts[:, 3]],
        starts[:, 1] - starts[:, 3], has_customer, last_time, known,
        np.where(known, fraud_times[np.clip(frauds_to_end - 1, 0, last)], t),
        np.where(known, fraud_times[np.clip(frauds_from_start, 0, last)], t))


def day_features(history: PreparedHistory | PreparedParts, day: DayRows,
                 targets: np.ndarray, *, profiles: bool,
                 cards: bool = False) -> dict[str, np.ndarray]:
    """The model inputs after TX_AMOUNT of the day's rows `targets` (row numbers in `day`).

    Every window of every target is computed at once (targets x windows arrays): a few
    dozen array operations whatever the number of targets.

    Args:
        history: The day's prepared history (in one part or several).
        day: The day's rows, holding at least every row of the targets' cards up to each
            target (later rows change nothing: a window ends at its row).
        targets: Row numbers in `day`, each a row of the history's day.
        profiles: Also the ``EXTRA_FEATURE_COLUMNS``.
        cards: Also the ``CARD_FEATURE_COLUMNS`` (with `profiles`; every history part
            prepared with ``cards_from_ns``).

    Returns:
        Each of ``FEATURE_COLUMNS[1:]`` (and the profiles, the cards when asked) by name,
        aligned with `targets`.
    """
    if cards and not profiles:
        raise ValueError("the card inputs come after the profile inputs: cards=True needs "
                         "profiles=True")
    t = day.times[targets]
    if len(t) and (int(t.min()) < history.before_ns
                   or int(t.max()) >= history.before_ns + NS_PER_DAY):
        raise DatasetValidationError(
            f"transactions to score: a time outside {pd.Timestamp(history.before_ns).date()}, "
            f"the day of the prepared history")
    out = calendar_columns(t)
    rank = day.rank[targets]
    card_ids, terminals = day.cards[targets], day.terminals[targets]
    parts = history.parts if isinstance(history, PreparedParts) else (history,)
    windows = _part_windows(parts[0], t, card_ids, terminals)
    for part in parts[1:]:
        windows = windows.then(_part_windows(part, t, card_ids, terminals))
    counts = windows.counts  # history rows in each window: 1, 7, 30, 37 days back
    sums_hi, sums_lo = windows.sums_hi, windows.sums_lo

    in_window = counts[:, :3] + (rank + 1)[:, None]  # the row itself included
    card_sums = day.sums[:, targets]
    with_day = rounded(*dd_add(sums_hi[:, _HISTORY_SUM], sums_lo[:, _HISTORY_SUM],
                               card_sums[_DAY_SUM].T, card_sums[[d + 1 for d in _DAY_SUM]].T))
    averages = with_day[:, :3] / in_window
    numbers = in_window.astype(float)
    for i, n in enumerate((1, 7, 30)):
        out[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = numbers[:, i]
        out[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = averages[:, i]

    t_counts = windows.t_counts
    risks = np.divide(windows.t_frauds, t_counts, out=np.zeros(t_counts.shape),
                      where=t_counts > 0)
    numbers = t_counts.astype(float)
    for i, n in enumerate((1, 7, 30)):
        out[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = numbers[:, i]
        out[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = risks[:, i]
    if not profiles:
        return out

    a = day.amounts[targets]
    earlier = counts[:, 1:3] + rank[:, None]  # 7 and 30 days, the row itself excluded
    ratio, zscore = (values.reshape(-1, 2) for values in amount_profile(
        np.repeat(a, 2), earlier.ravel(), with_day[:, 3:5].ravel(), with_day[:, 5:7].ravel()))
    for i, n in enumerate((7, 30)):
        out[f"CUSTOMER_ID_AMOUNT_RATIO_{n}DAY_WINDOW"] = ratio[:, i]
        out[f"CUSTOMER_ID_AMOUNT_ZSCORE_{n}DAY_WINDOW"] = zscore[:, i]
    in_history = windows.has_customer & (counts[:, 2] > 0)
    previous = np.where(rank > 0, day.previous_time[targets],
                        np.where(in_history, windows.last_time, t))
    out["CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX"] = seconds_since(t, previous, earlier[:, 1] > 0)
    out["CUSTOMER_ID_NB_TX_1_OVER_30DAY"] = (counts[:, 0] + rank + 1) / (earlier[:, 1] + 1)

    # Shares: the customer's delayed risk (t - 37 days, t - 7 days], the terminals' mean
    # amounts over 7 and 30 days (delayed).
    shares = share(np.concatenate([windows.c_frauds, rounded(sums_hi[:, 5], sums_lo[:, 5]),
                                   rounded(sums_hi[:, 6], sums_lo[:, 6])]),
                   np.concatenate([windows.c_delayed, t_counts[:, 1], t_counts[:, 2]]))
    count = len(t)
    out["CUSTOMER_ID_RISK_30DAY_WINDOW"] = shares[:count]
    out["TERMINAL_ID_AVG_AMOUNT_7DAY_WINDOW"] = shares[count:2 * count]
    out["TERMINAL_ID_AVG_AMOUNT_30DAY_WINDOW"] = shares[2 * count:]

    known = windows.fraud_known
    both = np.concatenate([known, known])
    since = days_since(np.concatenate([t, t]),
                       np.concatenate([windows.fraud_last, windows.fraud_first]), both)
    out["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"] = since[:count]
    out["TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"] = since[count:]
    if cards:
        out.update(_card_inputs(parts, day, targets))
    return out


def _card_inputs(parts: tuple[PreparedHistory, ...], day: DayRows,
                 targets: np.ndarray) -> dict[str, np.ndarray]:
    """The ``CARD_FEATURE_COLUMNS`` of the day's rows `targets` (`trainer.features.cards`).

    A target's span is its card's rows of the whole days D-13 .. D-1 (each part's rows
    from that midnight to its end, flagged when the part was prepared) and of day D at an
    earlier time (the card's rows before the first of its instant in (time, transaction
    id) order: their count, the exact sum before that row, and their flags, each against
    its own clean mean, read from the history: its window ends 7 days before it).
    """
    n = len(day.times)
    order = day.order
    rank, times = day.rank[order], day.times[order]  # in (card, time, id) order
    at = np.empty(n, np.int64)
    at[order] = np.arange(n)
    position = at[targets]
    first_of_card = rank == 0
    new_instant = first_of_card.copy()
    new_instant[1:] |= times[1:] != times[:-1]
    instant_first = np.maximum.accumulate(np.where(new_instant, np.arange(n), 0))
    # Only the targets' cards' rows need their clean means (a batch reads the whole day).
    run = np.cumsum(first_of_card) - 1
    wanted = np.zeros(n, bool)
    wanted[run[position]] = True
    needed = np.flatnonzero(wanted[run])
    mean = np.zeros(n)
    mean[needed] = _clean_means(parts, times[needed], day.cards[order[needed]])
    flags = np.concatenate(([0], np.cumsum(high(day.amounts[order], mean))))
    first, start = instant_first[position], position - day.rank[targets]
    before = order[first]  # the card's first row of the target's instant
    span_ns = parts[-1].before_ns - SPAN_DAYS * NS_PER_DAY
    ids = day.cards[targets]
    rows = first - start
    high_rows = flags[first] - flags[start]
    spent = (day.sums[2, before], day.sums[3, before])
    for part in parts:
        part_rows, part_high, part_sums = _span(part, ids, span_ns)
        rows += part_rows
        high_rows += part_high
        spent = dd_add(*spent, *part_sums)
    return card_columns(mean[position], rows, high_rows, rounded(*spent))


def _span(part: PreparedHistory, ids: np.ndarray,
          span_ns: int) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Rows, high rows and the exact amount sum of customers `ids` from `span_ns` on."""
    cards = _card_sums(part)
    if cards.span_ns != span_ns:
        raise ValueError(f"a history part prepared for the span from "
                         f"{pd.Timestamp(cards.span_ns)}, not {pd.Timestamp(span_ns)} (the "
                         f"day's)")
    codes = part.customers.codes_of(ids)
    if not len(cards.span_rows):
        zeros = np.zeros(len(ids))
        return zeros.astype(np.int64), zeros.astype(np.int64), (zeros, zeros.copy())
    known, code = codes >= 0, np.maximum(codes, 0)
    hi, lo = cards.span_sums
    return (np.where(known, cards.span_rows[code], 0), np.where(known, cards.span_high[code], 0),
            (np.where(known, hi[code], 0.0), np.where(known, lo[code], 0.0)))


def features_of_day_frame(transactions: pd.DataFrame, day: dt.date, *,
                          profiles: bool, cards: bool = False) -> pd.DataFrame:
    """``compute_features(transactions, day)`` (with the profiles, cards if asked), prepared.

    The same checks and the same frame as ``compute_features`` (and
    ``from_history.features_of_transactions``): one row per transaction of `day`, sorted
    by TRANSACTION_ID, ``OUTPUT_COLUMNS`` then, with `profiles`, the
    ``EXTRA_FEATURE_COLUMNS``, with `cards` the ``CARD_FEATURE_COLUMNS`` (`transactions`
    then hold ``CARD_HISTORY_DAYS`` days before `day`); computed as `fraudpipe serve`
    computes them, from the rows before `day` prepared once and each transaction's card
    rows of `day`.
    """
    frame = checked_inputs(transactions, f"transactions for {day.isoformat()}")
    times = nanoseconds(frame["TX_DATETIME"])
    start, end = day_bounds_ns(day)
    earlier, target = times < start, (times >= start) & (times < end)
    columns = {name: frame[name].to_numpy() for name in INPUT_COLUMNS}
    columns["TX_DATETIME"] = times
    history = {name: values[earlier] for name, values in columns.items()}
    prepared = (prepare_history(history, start, cards_from_ns=start - SPAN_DAYS * NS_PER_DAY)
                if cards else prepare_history(history, start))
    rows = day_rows({name: values[target] for name, values in columns.items()})
    features = day_features(prepared, rows, np.arange(len(rows.times)), profiles=profiles,
                            cards=cards)
    names = (FEATURE_COLUMNS[1:] + (EXTRA_FEATURE_COLUMNS if profiles else [])
             + (CARD_FEATURE_COLUMNS if cards else []))
    return features_frame(frame[target], features, names)
