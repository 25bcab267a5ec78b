"""The handbook's 15 model inputs, computed for one day from the days before it.

Definitions (docs/facts.md#features-and-evaluation; Le Borgne et al., *Reproducible Machine
Learning for Credit
Card Fraud Detection - Practical Handbook*, chapter 3.4):

- ``TX_DURING_WEEKEND`` is 1 on Saturday and Sunday, ``TX_DURING_NIGHT`` is 1 if the hour is
  at most 6.
- For n in {1, 7, 30}, ``CUSTOMER_ID_NB_TX_nDAY_WINDOW`` and
  ``CUSTOMER_ID_AVG_AMOUNT_nDAY_WINDOW`` are the count and mean amount of the customer's
  transactions in ``(t - n days, t]``, the current transaction included.
- For n in {1, 7, 30} and a delay d = 7 days, ``TERMINAL_ID_NB_TX_nDAY_WINDOW`` and
  ``TERMINAL_ID_RISK_nDAY_WINDOW`` are the count and fraud share of the terminal's
  transactions in ``(t - (d + n) days, t - d]``, 0 when there are none.

The handbook computes these with ``groupby(...).rolling('nd')``, which takes minutes over a
few million rows. Here every window is two binary searches in arrays sorted by
(entity, time) plus differences of cumulative sums, in numpy. The sorts are O(n): the
history on the share is already in time order, and a stable radix sort on the entity
alone then gives (entity, time) order.

Equal timestamps: pandas' time-based rolling window ends at the current *row*, so of two
transactions of one customer at the same instant the first includes only itself and the
second includes both. We fix the order of such rows by TRANSACTION_ID, so the result equals
pandas' rolling over the rows sorted by (TX_DATETIME, TRANSACTION_ID) and does not depend
on the order of the input rows. Terminal windows end a week before ``t``, so they have no
such ambiguity. The reference implementation in ``tests/unit/test_features.py`` pins this.

This module is pure computation on frames and arrays, and the reference for the carried
state of `trainer.features.state`; reading the history from the share and the features
cache live in `trainer.features.store`.

Window amount sums are double-double differences of compensated prefix sums
(`trainer.features.exact_sums`): a plain cumulative sum over millions of rows would lose
bits in proportion to the running total, not to the window.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from trainer.errors import DatasetValidationError
from trainer.features.exact_sums import prefix_sums, range_sums, rounded

#: Bump whenever a definition below changes: cached features of another version are ignored.
FEATURES_VERSION = "1"

#: Days of raw history before day D that D's features need: 30-day windows delayed by 7.
HISTORY_DAYS = 37

CUSTOMER_WINDOWS_DAYS = (1, 7, 30)
TERMINAL_WINDOWS_DAYS = (1, 7, 30)
TERMINAL_DELAY_DAYS = 7

#: The model inputs, in the order the model sees them.
FEATURE_COLUMNS: list[str] = [
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *[
        f"CUSTOMER_ID_{kind}_{n}DAY_WINDOW"
        for n in CUSTOMER_WINDOWS_DAYS
        for kind in ("NB_TX", "AVG_AMOUNT")
    ],
    *[
        f"TERMINAL_ID_{kind}_{n}DAY_WINDOW"
        for n in TERMINAL_WINDOWS_DAYS
        for kind in ("NB_TX", "RISK")
    ],
]

#: Columns the computation reads from the transactions.
INPUT_COLUMNS: list[str] = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_FRAUD",
]

#: Columns of a features frame: the identifying columns (TX_AMOUNT among them), then the
#: other 14 inputs as float64.
OUTPUT_COLUMNS: list[str] = INPUT_COLUMNS + FEATURE_COLUMNS[1:]

NS_PER_DAY = 86_400 * 10**9
NS_PER_HOUR = 3_600 * 10**9
# 1970-01-01 was a Thursday; with Monday = 0 that is weekday 3.
EPOCH_WEEKDAY = 3
NIGHT_LAST_HOUR = 6


def _check_columns(transactions: pd.DataFrame, what: str) -> None:
    missing = [name for name in INPUT_COLUMNS if name not in transactions.columns]
    if missing:
        raise DatasetValidationError(
            f"{what}: missing column(s) {missing}; features need {INPUT_COLUMNS}"
        )


def nanoseconds(datetimes: pd.Series) -> np.ndarray:
    """TX_DATETIME as int64 nanoseconds, whatever resolution pandas chose."""
    return datetimes.to_numpy().astype("datetime64[ns]").view("int64")


def day_bounds_ns(day: dt.date) -> tuple[int, int]:
    """Midnight of `day` and of the day after, as int64 nanoseconds."""
    start = pd.Timestamp(day).as_unit("ns").value
    return start, start + NS_PER_DAY


def time_order(times: np.ndarray, transaction_ids: np.ndarray) -> np.ndarray | None:
    """Row numbers sorted by (time, transaction id), or None if the rows already are.

    Ingest writes every day sorted by (TX_DATETIME, TRANSACTION_ID) and the history joins
    the days in date order, so on the share this is one O(n) check instead of a sort.
    """
    if len(times) < 2:
        return None
    earlier, later = times[:-1], times[1:]
    if np.all(later >= earlier) and not np.any(
        (later == earlier) & (transaction_ids[1:] <= transaction_ids[:-1])
    ):
        return None
    return np.lexsort((transaction_ids, times))


def _stable_order_by_code(codes: np.ndarray, code_count: int) -> np.ndarray:
    """Row numbers sorted by code, rows with the same code keeping their order.

    numpy's stable sort is an O(n) radix sort for integers of at most 16 bits but a merge
    sort for wider ones, so wider codes are sorted in two least-significant-digit passes:
    by the low 16 bits, then (stably) by the high 16 bits.
    """
    if code_count <= 1 << 16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    if code_count > 1 << 32:
        return np.argsort(codes, kind="stable")
    by_low = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    high = (codes >> 16).astype(np.uint16)[by_low]
    return by_low[np.argsort(high, kind="stable")]


def _entity_codes(ids: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
    """Codes 0..k-1 of the entity ids in order of first appearance, and k.

    The block order matters beyond grouping: the cumulative sums run over all entities
    in code order, so another order would change the last bits of the averages.
    A missing id (code -1 from pandas) is its own entity, sorted first.
    """
    codes, uniques = pd.factorize(ids, sort=False)
    codes = codes.astype(np.int64, copy=False)
    count = len(uniques)
    if len(codes) and codes.min() < 0:
        codes = codes + 1
        count += 1
    return codes, count


def entity_order(codes: np.ndarray, code_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by (entity, time), and their keys ``code * rows + row``.

    The rows must be in time order (row number = time rank), so a stable sort on the code
    alone gives (entity, time) order in O(n); the keys are unique and sorted.
    """
    order = _stable_order_by_code(codes, code_count)
    keys = codes[order] * len(codes) + order
    return order, keys


def _first_after(
    sorted_keys: np.ndarray, query_codes: np.ndarray, rows_not_after: np.ndarray
) -> np.ndarray:
    """Position in `sorted_keys` of each entity's first row whose time is strictly > a bound.

    `rows_not_after` counts the rows (all entities) with a time at most the bound; a row's
    time is at most the bound exactly when its time rank is below that count. Queries come
    in key order, which lets numpy's binary search start from the previous answer.
    """
    bounds = query_codes * len(sorted_keys) + rows_not_after
    return np.searchsorted(sorted_keys, bounds, side="left")


def calendar_columns(times: np.ndarray) -> dict[str, np.ndarray]:
    """TX_DURING_WEEKEND and TX_DURING_NIGHT of int64-nanosecond times."""
    return {
        "TX_DURING_WEEKEND": (((times // NS_PER_DAY) + EPOCH_WEEKDAY) % 7 >= 5).astype(float),
        "TX_DURING_NIGHT": ((times % NS_PER_DAY) // NS_PER_HOUR <= NIGHT_LAST_HOUR).astype(float),
    }


def _compute(
    times: np.ndarray,
    transaction_ids: np.ndarray,
    amounts: np.ndarray,
    frauds: np.ndarray,
    customers: tuple[np.ndarray, int],
    terminals: tuple[np.ndarray, int],
    target: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Features of the rows selected by the boolean mask `target`.

    Args:
        times: TX_DATETIME as int64 nanoseconds, one per row.
        transaction_ids: int64, unique (``tie_keys`` of the ids).
        amounts: TX_AMOUNT as float64.
        frauds: TX_FRAUD as float64.
        customers: ``_entity_codes`` of CUSTOMER_ID.
        terminals: ``_entity_codes`` of TERMINAL_ID.
        target: The rows to return features for.

    Returns:
        The target rows' numbers in (time, transaction id) order, and each feature of
        ``FEATURE_COLUMNS[1:]`` for them in that order.
    """
    (customer_codes, customer_count), (terminal_codes, terminal_count) = customers, terminals
    # Work on the rows ranked by (time, transaction id): the tie order pandas' rolling would
    # see on rows sorted that way. From here on a row number is its time rank.
    by_time = time_order(times, transaction_ids)
    if by_time is not None:
        times, amounts, frauds = times[by_time], amounts[by_time], frauds[by_time]
        customer_codes, terminal_codes = customer_codes[by_time], terminal_codes[by_time]
        target = target[by_time]
    rows = len(times)
    # The target rows in time order, so that each search below gets sorted queries.
    target_ranks = np.flatnonzero(target)
    target_rows = target_ranks if by_time is None else by_time[target_ranks]
    t = times[target_ranks]

    def rows_not_after(days_back: int) -> np.ndarray:
        return np.searchsorted(times, t - days_back * NS_PER_DAY, side="right")

    columns = calendar_columns(t)

    # Customers: a row's window ends at the row itself, so ties with a larger transaction id
    # are excluded, as in pandas' rolling.
    order, keys = entity_order(customer_codes, customer_count)
    amount_sums = prefix_sums(amounts[order])
    codes = customer_codes[target_ranks]
    query_order = np.argsort(codes * rows + target_ranks)
    codes = codes[query_order]
    end = np.empty(len(t), dtype=np.int64)
    end[query_order] = np.searchsorted(keys, codes * rows + target_ranks[query_order]) + 1
    for n in CUSTOMER_WINDOWS_DAYS:
        start = np.empty(len(t), dtype=np.int64)
        start[query_order] = _first_after(keys, codes, rows_not_after(n)[query_order])
        count = end - start
        columns[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = count.astype(float)
        columns[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = (
            rounded(*range_sums(*amount_sums, start, end)) / count)

    # Terminals: windows (t - (d + n), t - d]; both ends are binary searches.
    order, keys = entity_order(terminal_codes, terminal_count)
    fraud_sums = np.concatenate(([0.0], np.cumsum(frauds[order])))
    codes = terminal_codes[target_ranks]
    query_order = np.argsort(codes * rows + target_ranks)
    codes = codes[query_order]

    def terminal_bound(days_back: int) -> np.ndarray:
        bound = np.empty(len(t), dtype=np.int64)
        bound[query_order] = _first_after(keys, codes, rows_not_after(days_back)[query_order])
        return bound

    delayed_end = terminal_bound(TERMINAL_DELAY_DAYS)
    for n in TERMINAL_WINDOWS_DAYS:
        start = terminal_bound(TERMINAL_DELAY_DAYS + n)
        count = delayed_end - start
        fraud_count = fraud_sums[delayed_end] - fraud_sums[start]
        columns[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count.astype(float)
        columns[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = np.divide(
            fraud_count, count, out=np.zeros(len(count)), where=count > 0
        )
    return target_rows, columns


def features_of_target(columns: dict[str, np.ndarray],
                       target: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The features after TX_AMOUNT of the rows `target` selects, from numpy columns.

    ``compute_features``' computation (the same `_compute`) without a pandas frame, for a
    caller holding a few hundred rows already checked and in canonical types, such as one
    transaction scored online with its card's and terminal's rows (`trainer.serving`).

    Args:
        columns: Each of ``INPUT_COLUMNS`` as an array: TX_DATETIME as int64 nanoseconds
            or datetime64[ns], unique transaction ids, no missing amount or label.
        target: Boolean mask of the rows to return features for.

    Returns:
        The target rows' numbers in (time, transaction id) order, and each feature of
        ``FEATURE_COLUMNS[1:]`` for them in that order.
    """
    return _compute(
        np.asarray(columns["TX_DATETIME"]).astype("datetime64[ns]").view(np.int64),
        tie_keys(np.asarray(columns["TRANSACTION_ID"])),
        np.asarray(columns["TX_AMOUNT"], dtype=np.float64),
        np.asarray(columns["TX_FRAUD"], dtype=np.float64),
        _entity_codes(np.asarray(columns["CUSTOMER_ID"])),
        _entity_codes(np.asarray(columns["TERMINAL_ID"])),
        target,
    )


def features_frame(identity: pd.DataFrame, columns: dict[str, np.ndarray],
                   names: list[str] | None = None) -> pd.DataFrame:
    """The result frame: `identity` with the features appended, sorted by TRANSACTION_ID.

    `identity` holds the ``INPUT_COLUMNS`` of the target rows, in the order of `columns`;
    `names` are the feature columns to append (default: the 14 after TX_AMOUNT).
    """
    identity = identity.reset_index(drop=True)
    # One concat, not a column insert per feature: pandas re-checks the index on each.
    features = pd.DataFrame({name: columns[name] for name in names or FEATURE_COLUMNS[1:]},
                            copy=False)
    result = pd.concat([identity, features], axis=1)
    if result["TRANSACTION_ID"].is_monotonic_increasing:  # already in order: no copy
        return result
    return result.sort_values("TRANSACTION_ID", kind="stable", ignore_index=True)


def _compute_frame(frame: pd.DataFrame, target: np.ndarray) -> pd.DataFrame:
    """Features of the rows of the checked `frame` selected by the boolean mask `target`."""
    target_rows, columns = _compute(
        nanoseconds(frame["TX_DATETIME"]),
        tie_keys(frame["TRANSACTION_ID"].to_numpy()),
        frame["TX_AMOUNT"].to_numpy(dtype=np.float64),
        frame["TX_FRAUD"].to_numpy(dtype=np.float64),
        _entity_codes(frame["CUSTOMER_ID"]),
        _entity_codes(frame["TERMINAL_ID"]),
        target,
    )
    return features_frame(frame.iloc[target_rows][INPUT_COLUMNS], columns)


def tie_keys(transaction_ids: np.ndarray) -> np.ndarray:
    """Transaction ids as int64 keys of the same order: text ids become their sorted rank."""
    if transaction_ids.dtype.kind in "iu":
        return transaction_ids.astype(np.int64, copy=False)
    return pd.factorize(transaction_ids, sort=True)[0].astype(np.int64)


def first_repeated_row(transaction_ids: pd.Series) -> int | None:
    """The first row whose transaction id an earlier row already has, or None.

    Ids are normally a dense int64 range (the simulator numbers transactions in order):
    marking each id seen in a bitmap of that range and counting the marks is ten times
    cheaper than pandas' hash table (as many marks as rows means no repeat). Sparse or
    other ids, and locating a repeat for the error message, use the hash table.
    """
    if transaction_ids.dtype == np.dtype("int64") and len(transaction_ids):
        ids = transaction_ids.to_numpy()
        low, high = int(ids.min()), int(ids.max())
        if high - low < 4 * len(ids):
            seen = np.zeros(high - low + 1, dtype=bool)
            seen[ids - low] = True
            if np.count_nonzero(seen) == len(ids):
                return None
    duplicated = transaction_ids.duplicated().to_numpy()
    return int(np.flatnonzero(duplicated)[0]) if duplicated.any() else None


def checked_inputs(transactions: pd.DataFrame, what: str) -> pd.DataFrame:
    """`transactions`' ``INPUT_COLUMNS``, checked (errors name `what` and the row)."""
    _check_columns(transactions, what)
    frame = transactions[INPUT_COLUMNS]
    if not pd.api.types.is_datetime64_dtype(frame["TX_DATETIME"]):
        raise DatasetValidationError(
            f"{what}: column TX_DATETIME has dtype {frame['TX_DATETIME'].dtype}; "
            "expected datetime64 (see trainer.data.schema.COLUMNS)"
        )
    for name in ("TX_AMOUNT", "TX_FRAUD"):
        if frame[name].isna().any():
            row = int(np.flatnonzero(frame[name].isna().to_numpy())[0])
            raise DatasetValidationError(f"{what}: row {row}: {name} is missing; expected a number")
    repeated = first_repeated_row(frame["TRANSACTION_ID"])
    if repeated is not None:
        row = repeated
        raise DatasetValidationError(
            f"{what}: row {row}: TRANSACTION_ID {frame['TRANSACTION_ID'].iloc[row]} "
            "appears twice; expected unique transaction ids"
        )
    return frame


def compute_features(transactions: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The features of the transactions of `day`.

    Args:
        transactions: Rows in the canonical dtypes (``trainer.data.schema.COLUMNS``; only
            ``INPUT_COLUMNS`` are read) covering `day` and whatever history before it is
            available (``HISTORY_DAYS`` days give exact values).
        day: The day whose transactions to return.

    Returns:
        One row per transaction of `day`, sorted by TRANSACTION_ID, with ``OUTPUT_COLUMNS``:
        TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD, then the
        other 14 of ``FEATURE_COLUMNS`` as float64.

    Raises:
        DatasetValidationError: A column is missing, of the wrong type, or has gaps, or a
            transaction id repeats.
    """
    frame = checked_inputs(transactions, f"transactions for {day.isoformat()}")
    start, end = day_bounds_ns(day)
    times = nanoseconds(frame["TX_DATETIME"])
    return _compute_frame(frame, (times >= start) & (times < end))


def features_for_frame(history: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Features of every row of `rows`, given the transactions that happened before them.

    This serves datasets that are not one training day, such as the GKE sample's testing
    dataset: `rows` is its content and `history` the training days before it. A history
    row with the same TRANSACTION_ID as one of `rows` is dropped (the rows win), so passing
    a history that overlaps `rows` does not count a transaction twice.

    Args:
        history: Earlier transactions, same columns as `rows`; may be empty.
        rows: The transactions to compute features for.

    Returns:
        A frame like ``compute_features``' result with one row per row of `rows`.
    """
    rows = checked_inputs(rows, "rows to compute features for")
    if len(history):
        history = history[~history["TRANSACTION_ID"].isin(rows["TRANSACTION_ID"])]
    if len(history):
        history = checked_inputs(history, "history")
        frame = pd.concat([history, rows], ignore_index=True)
    else:
        history, frame = rows.iloc[0:0], rows.reset_index(drop=True)
    target = np.zeros(len(frame), dtype=bool)
    target[len(history) :] = True
    return _compute_frame(frame, target)


def features_of_columns(columns: dict[str, np.ndarray], day: dt.date) -> pd.DataFrame | None:
    """``compute_features`` of columns already in canonical numpy types, bit for bit.

    The fast path of a training step: `columns` maps each of ``INPUT_COLUMNS`` to an array
    (TX_DATETIME as datetime64[ns]) with no missing values, so no pandas frame of the whole
    history is built. Returns None when the rows need ``compute_features``' checks (a
    missing amount, a repeated transaction id), whose error messages name the row.
    """
    times = columns["TX_DATETIME"].view(np.int64)
    amounts = columns["TX_AMOUNT"]
    if np.isnan(amounts).any() or first_repeated_row(
            pd.Series(columns["TRANSACTION_ID"])) is not None:
        return None
    start, end = day_bounds_ns(day)
    target_rows, computed = _compute(
        times,
        tie_keys(columns["TRANSACTION_ID"]),
        amounts,
        columns["TX_FRAUD"].astype(np.float64),
        _entity_codes(columns["CUSTOMER_ID"]),
        _entity_codes(columns["TERMINAL_ID"]),
        (times >= start) & (times < end),
    )
    identity = pd.DataFrame({name: columns[name][target_rows] for name in INPUT_COLUMNS})
    return features_frame(identity, computed)
