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

`fraudpipe serve` (one transaction, or a batch) and arrival scoring (a whole day,
`trainer.arrival`) both call `day_features`: online equals offline by construction.

Exact sums: a window's amount sum is its history part (a difference of the history's
double-double prefix sums, `trainer.features.exact_sums`) plus its card's rows of D (a
double-double prefix restarting at 0 on each card, the same whether D's other cards are
there or not), added as double-doubles and rounded once. While the double-double
arithmetic is exact (its low parts are sums of rounding errors, far inside 53 bits for
money amounts), that is the correctly rounded exact sum, the value the raw-history
computation of `compute` and `profiles` gives from any context: tests compare them bit
for bit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainer.errors import DatasetValidationError
from trainer.features.compute import (
    FEATURE_COLUMNS,
    INPUT_COLUMNS,
    NS_PER_DAY,
    TERMINAL_DELAY_DAYS,
    _day_bounds_ns,
    _nanoseconds,
    _prepare,
    calendar_columns,
    entity_order,
    features_frame,
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

#: Days back from a target's time where a customer window starts (1, 7, 30: the
#: handbook's windows and the profiles' 7 and 30; 7 and 37: the delayed risk window).
CUSTOMER_BACK_DAYS = (1, 7, 30, LOOKBACK_DAYS)
#: The same for terminals: 7 ends every delayed window; 8, 14, 37 start the 1, 7 and
#: 30-day ones.
TERMINAL_BACK_DAYS = (TERMINAL_DELAY_DAYS, TERMINAL_DELAY_DAYS + 1, TERMINAL_DELAY_DAYS + 7,
                      TERMINAL_DELAY_DAYS + 30)
_CUSTOMER_BACK_NS = np.array(CUSTOMER_BACK_DAYS, np.int64) * NS_PER_DAY
_TERMINAL_BACK_NS = np.array(TERMINAL_BACK_DAYS, np.int64) * NS_PER_DAY
assert LABEL_DELAY_DAYS == TERMINAL_DELAY_DAYS and LOOKBACK_DAYS == TERMINAL_DELAY_DAYS + 30


@dataclass(frozen=True)
class _Entities:
    """The history rows of one entity kind in (entity, time) order, with their sums."""

    ids: pd.Index
    """Entity id by code."""
    keys: np.ndarray
    """``code * rows + time rank`` of each row, sorted: an entity's window is a range."""
    amount_sums: tuple[np.ndarray, np.ndarray]
    """Exact prefix sums of TX_AMOUNT in key order (`exact_sums.prefix_sums`)."""
    fraud_sums: np.ndarray
    """Prefix sums of TX_FRAUD in key order, with a leading 0."""
    square_sums: tuple[np.ndarray, np.ndarray] | None = None
    """Customers: exact prefix sums of TX_AMOUNT squared."""
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
        rows = len(self.keys)
        return np.searchsorted(self.keys, codes[:, None] * max(rows, 1) + ranks)


def _entities(ids: np.ndarray, times: np.ndarray, amounts: np.ndarray, frauds: np.ndarray,
              *, customers: bool) -> _Entities:
    """`_Entities` of rows already in (time, transaction id) order."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=False)
    codes = codes.astype(np.int64, copy=False)
    order, keys = entity_order(codes, len(uniques))
    fraud_sums = np.concatenate(([0.0], np.cumsum(frauds[order])))
    if customers:
        rows = len(times)
        last = np.searchsorted(keys, (np.arange(len(uniques)) + 1) * max(rows, 1)) - 1
        return _Entities(pd.Index(uniques), keys, prefix_sums(amounts[order]), fraud_sums,
                         square_sums=prefix_sums((amounts**2)[order]),
                         last_time=times[order[last]])
    flags = frauds[order] > 0
    return _Entities(pd.Index(uniques), keys, prefix_sums(amounts[order]), fraud_sums,
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

    @property
    def rows(self) -> int:
        """How many history rows."""
        return len(self.times)


def prepare_history(columns: dict[str, np.ndarray], before_ns: int) -> PreparedHistory:
    """The history of the day starting at `before_ns`, prepared (see the module doc).

    Args:
        columns: ``INPUT_COLUMNS`` as arrays (TX_DATETIME as int64 ns or datetime64,
            no missing amount or label), every row earlier than `before_ns`.
        before_ns: Midnight of the day whose transactions will be queried.

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
    take = (lambda values: values) if by_time is None else (lambda values: values[by_time])
    times = take(times)
    amounts = take(np.asarray(columns["TX_AMOUNT"], dtype=np.float64))
    frauds = take(np.asarray(columns["TX_FRAUD"], dtype=np.float64))
    return PreparedHistory(
        before_ns, times,
        _entities(take(np.asarray(columns["CUSTOMER_ID"])), times, amounts, frauds,
                  customers=True),
        _entities(take(np.asarray(columns["TERMINAL_ID"])), times, amounts, frauds,
                  customers=False))


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
    amount_through: tuple[np.ndarray, np.ndarray]
    """Exact sum of the card's amounts through the row (itself included)."""
    amount_before: tuple[np.ndarray, np.ndarray]
    """The same, without the row."""
    square_before: tuple[np.ndarray, np.ndarray]
    """Exact sum of the squares of the card's amounts before the row."""
    previous_time: np.ndarray
    """The time of the card's previous row (the row's own time when it is the first)."""


def _time_id_order(times: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row numbers in (time, transaction id) order (ids compared as they are: ints or text)."""
    if len(times) <= 32:  # one card's rows: a Python sort beats building tie keys
        return np.array(sorted(range(len(times)), key=lambda i: (times[i], ids[i])), np.int64)
    return np.lexsort((tie_keys(ids), times))


def _run_prefix_sums(values: np.ndarray, run: np.ndarray, rank: np.ndarray,
                     lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact prefix sums (``hi``, ``lo``) through each row, restarting at each run.

    `run` and `rank` place each row in its run (card); the sums of a run are a row of a
    matrix summed along its axis (numpy accumulates sequentially), so they do not depend
    on the other runs. Runs are grouped by length rounded up to a power of two, so the
    padded matrices hold at most twice the rows.
    """
    hi, lo = np.empty(len(values)), np.empty(len(values))
    if len(lengths) == 1:
        matrices = [(np.arange(len(values)), np.zeros(len(values), np.int64), 1)]
    else:
        widths = np.left_shift(1, np.ceil(np.log2(lengths)).astype(np.int64))
        row_width = widths[run]
        matrices = []
        for width in np.unique(widths):
            chosen = np.flatnonzero(widths == width)
            local = np.empty(len(lengths), np.int64)
            local[chosen] = np.arange(len(chosen))
            rows = np.flatnonzero(row_width == width)
            matrices.append((rows, local[run[rows]], len(chosen)))
    for rows, which, count in matrices:
        width = int(rank[rows].max()) + 1
        matrix = np.zeros((count, width))
        matrix[which, rank[rows]] = values[rows]
        sums = np.cumsum(matrix, axis=1)
        before = np.zeros_like(sums)
        before[:, 1:] = sums[:, :-1]
        errors = np.cumsum(two_sum(before, matrix)[1], axis=1)
        hi[rows] = sums[which, rank[rows]]
        lo[rows] = errors[which, rank[rows]]
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
        run_sorted = np.zeros(n, np.int64)
        rank_sorted = np.arange(n, dtype=np.int64)
    else:
        codes = pd.factorize(cards, use_na_sentinel=False)[0]
        order = np.lexsort((tie_keys(ids), times, codes))
        sorted_codes = codes[order]
        first = np.ones(n, bool)
        first[1:] = sorted_codes[1:] != sorted_codes[:-1]
        starts = np.flatnonzero(first)
        lengths = np.diff(np.append(starts, n))
        run_sorted = np.cumsum(first) - 1
        rank_sorted = np.arange(n) - starts[run_sorted]
    sorted_amounts = amounts[order]
    through = _run_prefix_sums(sorted_amounts, run_sorted, rank_sorted, lengths)
    squares = _run_prefix_sums(sorted_amounts**2, run_sorted, rank_sorted, lengths)
    has_before = rank_sorted > 0
    previous = np.arange(n) - 1  # the card's previous row, where it has one

    def before(sums: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return (np.where(has_before, sums[0][previous], 0.0),
                np.where(has_before, sums[1][previous], 0.0))

    sorted_times = times[order]
    in_rows = np.empty(n, np.int64)  # sorted position -> the caller's row
    in_rows[order] = np.arange(n)
    fields = (rank_sorted, *through, *before(through), *before(squares),
              np.where(has_before, sorted_times[previous], sorted_times))
    rank, t_hi, t_lo, b_hi, b_lo, s_hi, s_lo, previous_time = (f[in_rows] for f in fields)
    return DayRows(times, cards, np.asarray(columns["TERMINAL_ID"]), amounts, rank,
                   (t_hi, t_lo), (b_hi, b_lo), (s_hi, s_lo), previous_time)


def _with_day(history_sums: tuple[np.ndarray, np.ndarray],
              day_sums: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """History window sums (targets x windows) plus the card's day part, rounded once."""
    return rounded(*dd_add(history_sums[0], history_sums[1], day_sums[0][:, None],
                           day_sums[1][:, None]))


def day_features(history: PreparedHistory, day: DayRows, targets: np.ndarray, *,
                 profiles: bool) -> dict[str, np.ndarray]:
    """The model inputs after TX_AMOUNT of the day's rows `targets` (row numbers in `day`).

    Args:
        history: The day's prepared history.
        day: The day's rows, holding at least every row of the targets' cards up to each
            target (later rows change nothing: a window ends at its row).
        targets: Row numbers in `day`, each a row of the history's day.
        profiles: Also the ``EXTRA_FEATURE_COLUMNS``.

    Returns:
        Each of ``FEATURE_COLUMNS[1:]`` (and the profiles when asked) by name, aligned
        with `targets`.
    """
    t = day.times[targets]
    if len(t) and (int(t.min()) < history.before_ns
                   or int(t.max()) >= history.before_ns + NS_PER_DAY):
        raise DatasetValidationError(
            f"transactions to score: a time outside {pd.Timestamp(history.before_ns).date()}, "
            f"the day of the prepared history")
    out = calendar_columns(t)
    rank = day.rank[targets]
    through = (day.amount_through[0][targets], day.amount_through[1][targets])

    # Customers: the history part of (t - n days, t] is its rows from the bound on; all of
    # them are before the day, so the window's history part ends at the entity's end.
    customers = history.customers
    codes = customers.codes_of(day.cards[targets])
    ranks = np.searchsorted(history.times, t[:, None] - _CUSTOMER_BACK_NS, side="right")
    at = customers.positions(codes, np.concatenate(
        [ranks, np.full((len(t), 1), history.rows)], axis=1))
    starts, end = at[:, :4], at[:, 4:]
    counts = end - starts  # history rows in each window: 1, 7, 30, 37 days back
    windows = counts[:, :3] + (rank + 1)[:, None]  # the row itself included
    totals = _with_day(range_sums(*customers.amount_sums, starts[:, :3], end), through)
    averages = totals / windows
    for i, n in enumerate((1, 7, 30)):
        out[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = windows[:, i].astype(float)
        out[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = averages[:, i]

    terminals = history.terminals
    t_codes = terminals.codes_of(day.terminals[targets])
    t_ranks = np.searchsorted(history.times, t[:, None] - _TERMINAL_BACK_NS, side="right")
    t_at = terminals.positions(t_codes, t_ranks)
    delayed_end, t_starts = t_at[:, :1], t_at[:, 1:]  # starts: 8, 14, 37 days back
    t_counts = delayed_end - t_starts
    frauds_in = terminals.fraud_sums[delayed_end] - terminals.fraud_sums[t_starts]
    for i, n in enumerate((1, 7, 30)):
        count = t_counts[:, i]
        out[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count.astype(float)
        out[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = np.divide(
            frauds_in[:, i], count, out=np.zeros(len(count)), where=count > 0)
    if not profiles:
        return out

    assert customers.square_sums is not None and customers.last_time is not None
    a = day.amounts[targets]
    earlier = counts[:, 1:3] + rank[:, None]  # 7 and 30 days, the row itself excluded
    before = (day.amount_before[0][targets], day.amount_before[1][targets])
    squares_before = (day.square_before[0][targets], day.square_before[1][targets])
    sums = _with_day(range_sums(*customers.amount_sums, starts[:, 1:3], end), before)
    squares = _with_day(range_sums(*customers.square_sums, starts[:, 1:3], end),
                        squares_before)
    for i, n in enumerate((7, 30)):
        ratio, zscore = amount_profile(a, earlier[:, i], sums[:, i], squares[:, i])
        out[f"CUSTOMER_ID_AMOUNT_RATIO_{n}DAY_WINDOW"] = ratio
        out[f"CUSTOMER_ID_AMOUNT_ZSCORE_{n}DAY_WINDOW"] = zscore
    in_history = (codes >= 0) & (counts[:, 2] > 0)
    last_time = customers.last_time[np.maximum(codes, 0)] if len(customers.last_time) else t
    previous = np.where(rank > 0, day.previous_time[targets],
                        np.where(in_history, last_time, t))
    out["CUSTOMER_ID_SECONDS_SINCE_PREVIOUS_TX"] = seconds_since(t, previous, earlier[:, 1] > 0)
    out["CUSTOMER_ID_NB_TX_1_OVER_30DAY"] = ((counts[:, 0] + rank + 1)
                                             / (earlier[:, 1] + 1))
    delayed = starts[:, 1], starts[:, 3]  # (t - 37 days, t - 7 days]
    out["CUSTOMER_ID_RISK_30DAY_WINDOW"] = share(
        customers.fraud_sums[delayed[0]] - customers.fraud_sums[delayed[1]],
        delayed[0] - delayed[1])

    delayed_end = delayed_end[:, 0]
    for n, start in ((7, t_starts[:, 1]), (30, t_starts[:, 2])):
        out[f"TERMINAL_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = share(
            rounded(*range_sums(*terminals.amount_sums, start, delayed_end)),
            delayed_end - start)
    assert terminals.fraud_counts is not None and terminals.fraud_times is not None
    frauds_to_end = terminals.fraud_counts[delayed_end]
    frauds_from_start = terminals.fraud_counts[t_starts[:, 2]]
    known = frauds_to_end > frauds_from_start
    fraud_times = terminals.fraud_times if len(terminals.fraud_times) else np.zeros(1, np.int64)
    last = len(fraud_times) - 1
    out["TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD"] = days_since(
        t, np.where(known, fraud_times[np.clip(frauds_to_end - 1, 0, last)], t), known)
    out["TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"] = days_since(
        t, np.where(known, fraud_times[np.clip(frauds_from_start, 0, last)], t), known)
    return out


def features_of_day_frame(transactions: pd.DataFrame, day: dt.date, *,
                          profiles: bool) -> pd.DataFrame:
    """``compute_features(transactions, day)`` (with the profiles if asked), prepared.

    The same checks and the same frame as ``compute_features`` (and
    ``from_history.features_of_transactions``): one row per transaction of `day`, sorted
    by TRANSACTION_ID, ``OUTPUT_COLUMNS`` then, with `profiles`, the
    ``EXTRA_FEATURE_COLUMNS``; computed as `fraudpipe serve` computes them, from the rows
    before `day` prepared once and each transaction's card rows of `day`.
    """
    frame = _prepare(transactions, f"transactions for {day.isoformat()}")
    times = _nanoseconds(frame["TX_DATETIME"])
    start, end = _day_bounds_ns(day)
    earlier, target = times < start, (times >= start) & (times < end)
    columns = {name: frame[name].to_numpy() for name in INPUT_COLUMNS}
    columns["TX_DATETIME"] = times
    prepared = prepare_history({name: values[earlier] for name, values in columns.items()},
                               start)
    rows = day_rows({name: values[target] for name, values in columns.items()})
    features = day_features(prepared, rows, np.arange(len(rows.times)), profiles=profiles)
    names = FEATURE_COLUMNS[1:] + (EXTRA_FEATURE_COLUMNS if profiles else [])
    return features_frame(frame[target], features, names)
