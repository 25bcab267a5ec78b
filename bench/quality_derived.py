"""Candidate inputs derived from a features frame's own columns (validation experiments).

Each is a function of columns every profile features frame already holds (the row's
``TX_DATETIME`` and the handbook and profile inputs), so a step could compute it from the
carried state it keeps today, with no new state. They are tried on validation weeks by
`bench.quality_features` (groups ``terminal_calendar`` and ``terminal_fraud_count``);
none is a model input of any learner.

- ``TERMINAL_ID_CALENDAR_DAYS_SINCE_FIRST_KNOWN_FRAUD`` / ``..._SINCE_KNOWN_FRAUD``: the
  calendar days between the row's day and the day of the terminal's first (last) fraud in
  the delayed window, 38 when there is none. The simulator compromises a terminal for 28
  calendar days (its day and the 27 after, docs/facts.md section 2), so the spell's end is
  a whole number of days after its first fraud's day; the profile inputs give the elapsed
  time in fractional days, which a tree cannot turn into calendar days without the two
  times of day (a row at 01:00 27.1 days after a fraud at 23:00 is 28 calendar days on).
- ``TERMINAL_ID_NB_FRAUD_nDAY_WINDOW`` (n in 1, 7, 30): known frauds of the terminal in the
  delayed window, ``RISK * NB_TX`` rounded: a compromised terminal has many, a terminal
  that met one fraud of another scenario has one.

One more needs state the step does not keep (per terminal and day, the sum of its frauds'
amounts beside their count), so it is computed here from every day's rows:

- ``TERMINAL_ID_AVG_FRAUD_AMOUNT_nDAY_WINDOW`` (n in 7, 30): mean amount of the terminal's
  frauds in the delayed window ``(t - (7 + n) DAY, t - 7 DAY]``, 0 when none. A terminal
  compromised for a spell defrauds ordinary amounts; one that met a single fraud of
  another kind (an amount above 220, a compromised card's x5 amount) shows a high one, so
  a known fraud that its amount explains says less about the terminal's next rows.

And, per card (customer), from the same rows:

- ``CUSTOMER_ID_CLEAN_AMOUNT_RATIO_nDAY_WINDOW`` / ``..._ZSCORE_...`` (n in 30, 60): the
  amount's ratio and z-score (`trainer.features.profiles.amount_profile`'s formulas)
  against the card's *known-genuine* rows in the delayed window
  ``(t - (7 + n) DAY, t - 7 DAY]``, where every label is known. A compromised card's x5
  frauds inflate the mean and spread of today's customer profiles (``CUSTOMER_ID_AMOUNT_``)
  for the 14 days of its compromise and so hide its later frauds; here they are left out.
- ``CUSTOMER_ID_AMOUNT_OVER_FRAUD_AMOUNT_30DAY_WINDOW``: the amount over the mean amount
  of the card's known frauds in ``(t - 37 DAY, t - 7 DAY]``, 0 when none: a later fraud
  of the same compromise is near 1, a genuine row near 1/5.
- ``CUSTOMER_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD``: ``t`` minus the time of the card's first
  fraud in that window, in days, capped at 37 (also when none). The simulator compromises a
  card for 14 days, so the age of the compromise says whether it can still be going on.

- ``CUSTOMER_ID_NB_HIGH_AMOUNT_14DAY_WINDOW``: the card's earlier rows in
  ``(t - 14 DAY, t)``, labels not yet known, whose amount was at least 3 times their own
  known-genuine 60-day mean (``CUSTOMER_ID_CLEAN_AMOUNT_RATIO_60DAY_WINDOW >= 3``), and
  ``CUSTOMER_ID_HIGH_AMOUNT_SHARE_14DAY_WINDOW`` the same count over those earlier rows (0
  when none). A genuine amount, N(mean, mean / 2), is above 3 means about once in 30,000
  draws, a x5 fraud four times in five: a card whose compromise has begun shows it before
  any label arrives, and so do its frauds whose x5 amount looks ordinary.

A step would compute these from state it does not keep: per card and day, the count, sum
and sum of squares of its genuine rows' amounts, and its frauds' count, amount sum and
first time, for the days of the delayed window; and per card and day, its rows and its rows
with a high amount, for the last 14 days.

Two variants over whole calendar days, which the step could carry cheaply. The *span* of a
row at time t of day D is the card's rows on the 13 days D-13 .. D-1 and its rows of day D
before t (labels not yet known):

- ``CUSTOMER_ID_NB_HIGH_AMOUNT_14CALENDAR_DAYS``: the span's rows whose amount was at least
  3 times their own known-genuine 30-day mean (``CUSTOMER_ID_CLEAN_AMOUNT_RATIO_30DAY_WINDOW
  >= 3``, the delayed window the step already reads for ``CUSTOMER_ID_RISK_30DAY_WINDOW``),
  and ``CUSTOMER_ID_HIGH_AMOUNT_SHARE_14CALENDAR_DAYS`` that count over the span's rows (0
  when none).
- ``CUSTOMER_ID_RECENT_OVER_CLEAN_AMOUNT_14CALENDAR_DAYS``: the mean amount of the span's
  rows over the card's known-genuine 30-day mean, 1 when either is missing: sums only.

What `trainer.features.state` would add for them: (1) on the delayed customers' kind ``D``
(30-day window, 7 days late), one double-double sum, the amount of the genuine rows, rolled
like its fraud count (full days in D-8, out D-37; partial days D-7 and D-37 read raw as
now): the clean count is its row count minus its fraud count, both carried. (2) per
customer, a window of the 13 whole days D-13 .. D-1, its row count and (for the recent
ratio) a double-double amount sum: day D-1 enters, day D-14 leaves, both days a step
already reads (D-14 is a terminal boundary day); it has no partial day, and the earlier
rows of day D come from day D itself, by time. (3) for the high count only, per customer and
day of D-13 .. D-1, the number of its high rows, as a sparse list of (customer position,
day, count) pairs holding only days with a high row, kept as the terminals' first fraud
times are: a row's flag uses its own delayed window, which a later step cannot recompute
from the boundary days it reads (on seed 0 about 16 cards a day have a high row, so the
list holds about 214 pairs, 239 at most). A rebuild from raw history would need the flags
of D-13 .. D-1, so the delayed windows of those days: 50 days of raw rows, not 38.

To tell the two changes apart, ``CUSTOMER_ID_NB_HIGH_AMOUNT_30CLEAN_14DAY_WINDOW`` and
``CUSTOMER_ID_HIGH_AMOUNT_30CLEAN_SHARE_14DAY_WINDOW`` keep the first definition's elapsed
window ``(t - 14 DAY, t)`` with the 30-day flag. The step could carry these too: (1) above,
a customer 14-day window of row counts with the partial day D-14 (read already), and a
sparse list of the high rows' times for D-14 .. D-1 (the partial day needs each row's flag).

Per terminal, from every day's rows (`with_terminal_after_fraud`):

- ``TERMINAL_ID_NB_GENUINE_AFTER_LAST_KNOWN_FRAUD`` / ``..._FIRST_KNOWN_FRAUD``: the
  terminal's known-genuine rows after its last (first) fraud in the delayed window
  ``(t - 37 DAY, t - 7 DAY]``, up to ``t - 7 DAY``; -1 when it has no fraud there. A
  compromised terminal defrauds every transaction of its spell, so while a spell goes on
  no known-genuine row follows its last known fraud; a terminal that met one fraud of
  another scenario (an amount above 220, a compromised card) goes on with genuine rows,
  which its fraud share over a window cannot tell apart from a spell's first day. State
  the step would need: per terminal, the time of its last (first) known fraud (kept for the
  first today) and its rows' genuine counts per day of the delayed window (kept).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainer.features.profiles import LOOKBACK_DAYS, amount_profile, days_since, share

NS_PER_SECOND = 10**9
NS_PER_DAY = 86_400 * NS_PER_SECOND
#: Value of a calendar-day input when the terminal has no fraud in the delayed window.
NO_KNOWN_FRAUD_DAYS = float(LOOKBACK_DAYS + 1)

CALENDAR_COLUMNS = {
    "TERMINAL_ID_CALENDAR_DAYS_SINCE_FIRST_KNOWN_FRAUD": "TERMINAL_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD",
    "TERMINAL_ID_CALENDAR_DAYS_SINCE_KNOWN_FRAUD": "TERMINAL_ID_DAYS_SINCE_KNOWN_FRAUD",
}
FRAUD_COUNT_COLUMNS = {f"TERMINAL_ID_NB_FRAUD_{n}DAY_WINDOW": n for n in (1, 7, 30)}
FRAUD_AMOUNT_COLUMNS = {f"TERMINAL_ID_AVG_FRAUD_AMOUNT_{n}DAY_WINDOW": n for n in (7, 30)}
CLEAN_AMOUNT_WINDOWS_DAYS = (30, 60)
CLEAN_AMOUNT_COLUMNS = {f"CUSTOMER_ID_CLEAN_AMOUNT_{kind}_{n}DAY_WINDOW": n
                        for n in CLEAN_AMOUNT_WINDOWS_DAYS for kind in ("RATIO", "ZSCORE")}
CARD_FRAUD_COLUMNS = ["CUSTOMER_ID_AMOUNT_OVER_FRAUD_AMOUNT_30DAY_WINDOW",
                      "CUSTOMER_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"]
HIGH_AMOUNT_COLUMNS = ["CUSTOMER_ID_NB_HIGH_AMOUNT_14DAY_WINDOW",
                       "CUSTOMER_ID_HIGH_AMOUNT_SHARE_14DAY_WINDOW"]
HIGH_AMOUNT_DAYS_COLUMNS = ["CUSTOMER_ID_NB_HIGH_AMOUNT_14CALENDAR_DAYS",
                            "CUSTOMER_ID_HIGH_AMOUNT_SHARE_14CALENDAR_DAYS"]
RECENT_CLEAN_COLUMNS = ["CUSTOMER_ID_RECENT_OVER_CLEAN_AMOUNT_14CALENDAR_DAYS"]
HIGH_AMOUNT_30_COLUMNS = ["CUSTOMER_ID_NB_HIGH_AMOUNT_30CLEAN_14DAY_WINDOW",
                          "CUSTOMER_ID_HIGH_AMOUNT_30CLEAN_SHARE_14DAY_WINDOW"]
AFTER_FRAUD_COLUMNS = ["TERMINAL_ID_NB_GENUINE_AFTER_LAST_KNOWN_FRAUD",
                       "TERMINAL_ID_NB_GENUINE_AFTER_FIRST_KNOWN_FRAUD"]
#: An amount this many times the card's known-genuine mean counts as high.
HIGH_AMOUNT_RATIO = 3.0
#: Days a compromised card is defrauded (docs/facts.md section 2).
CARD_COMPROMISE_DAYS = 14
DERIVED_COLUMNS = [*CALENDAR_COLUMNS, *FRAUD_COUNT_COLUMNS, *FRAUD_AMOUNT_COLUMNS,
                   *CLEAN_AMOUNT_COLUMNS, *CARD_FRAUD_COLUMNS, *HIGH_AMOUNT_COLUMNS,
                   *HIGH_AMOUNT_DAYS_COLUMNS, *RECENT_CLEAN_COLUMNS, *HIGH_AMOUNT_30_COLUMNS,
                   *AFTER_FRAUD_COLUMNS]
LABEL_DELAY_DAYS = 7


def calendar_days_since(times_ns: np.ndarray, days_since: np.ndarray) -> np.ndarray:
    """Calendar days from the day of ``time - days_since`` to the day of ``time``.

    With ``t = D * DAY + tau`` and the earlier time ``t - delta``, its day is
    ``D + floor((tau - delta) / DAY)``, so the difference is ``ceil((delta - tau) / DAY)``.
    Transaction times are whole seconds, so `delta` is rounded to the second first (the
    fractional-day column carries float error below a microsecond).
    """
    tau = times_ns % NS_PER_DAY
    delta = np.round(days_since * 86_400) * NS_PER_SECOND
    days = np.ceil((delta - tau) / NS_PER_DAY)
    return np.where(days_since < LOOKBACK_DAYS, days, NO_KNOWN_FRAUD_DAYS)


def with_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the `DERIVED_COLUMNS` added (it must hold the profile inputs)."""
    times = frame["TX_DATETIME"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    added = {name: calendar_days_since(times, frame[source].to_numpy())
             for name, source in CALENDAR_COLUMNS.items()}
    for name, n in FRAUD_COUNT_COLUMNS.items():
        added[name] = np.round(frame[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"].to_numpy()
                               * frame[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"].to_numpy())
    return frame.assign(**added)


def with_fraud_amounts(frames: dict) -> dict:
    """Every day's frame with `FRAUD_AMOUNT_COLUMNS` added, from all the days' rows.

    Args:
        frames: date -> features frame (TX_DATETIME, TERMINAL_ID, TX_AMOUNT, TX_FRAUD), the
            whole simulation, so each row's delayed window is inside it.
    """
    rows = _all_rows(frames, ["TX_DATETIME", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"])
    frauds = _DelayedWindows(rows, "TERMINAL_ID", rows["TX_FRAUD"].to_numpy() == 1)
    amounts = frauds.prefix_sums(rows["TX_AMOUNT"].to_numpy())
    added = {}
    for name, n in FRAUD_AMOUNT_COLUMNS.items():
        start, end = frauds.bounds(n)
        added[name] = share(amounts[end] - amounts[start], end - start)
    return _split_back(frames, added)


def with_terminal_after_fraud(frames: dict) -> dict:
    """Every day's frame with `AFTER_FRAUD_COLUMNS` added, from all the days' rows.

    Args:
        frames: date -> features frame (TX_DATETIME, TERMINAL_ID, TX_FRAUD), the whole
            simulation, so each row's delayed window is inside it.
    """
    rows = _all_rows(frames, ["TX_DATETIME", "TERMINAL_ID", "TX_FRAUD"])
    fraud = rows["TX_FRAUD"].to_numpy() == 1
    frauds = _DelayedWindows(rows, "TERMINAL_ID", fraud)
    genuine = _DelayedWindows(rows, "TERMINAL_ID", ~fraud)
    start, end = frauds.bounds(LOOKBACK_DAYS - LABEL_DELAY_DAYS)
    known = end > start
    times = np.append(frauds.times, 0)
    window_end = frauds.row_times - LABEL_DELAY_DAYS * NS_PER_DAY
    added = {}
    for name, fraud_time in (("LAST", times[np.maximum(end - 1, 0)]), ("FIRST", times[start])):
        after, upto = genuine.between(np.where(known, fraud_time, window_end), window_end)
        added[f"TERMINAL_ID_NB_GENUINE_AFTER_{name}_KNOWN_FRAUD"] = np.where(
            known, upto - after, -1).astype(np.float64)
    return _split_back(frames, added)


def with_card_amounts(frames: dict) -> dict:
    """Every day's frame with the card candidates added (`CLEAN_AMOUNT_COLUMNS`,
    `CARD_FRAUD_COLUMNS`, `HIGH_AMOUNT_COLUMNS`, `HIGH_AMOUNT_DAYS_COLUMNS`,
    `RECENT_CLEAN_COLUMNS`, `HIGH_AMOUNT_30_COLUMNS`).

    Args:
        frames: date -> features frame (TX_DATETIME, CUSTOMER_ID, TX_AMOUNT, TX_FRAUD), the
            whole simulation, so each row's delayed window is inside it.
    """
    rows = _all_rows(frames, ["TX_DATETIME", "CUSTOMER_ID", "TX_AMOUNT", "TX_FRAUD"])
    amount = rows["TX_AMOUNT"].to_numpy().astype(np.float64)
    fraud = rows["TX_FRAUD"].to_numpy() == 1
    added = {}
    genuine = _DelayedWindows(rows, "CUSTOMER_ID", ~fraud)
    total, squares = genuine.prefix_sums(amount), genuine.prefix_sums(amount**2)
    for n in CLEAN_AMOUNT_WINDOWS_DAYS:
        start, end = genuine.bounds(n)
        ratio, zscore = amount_profile(amount, end - start, total[end] - total[start],
                                       squares[end] - squares[start])
        added[f"CUSTOMER_ID_CLEAN_AMOUNT_RATIO_{n}DAY_WINDOW"] = ratio
        added[f"CUSTOMER_ID_CLEAN_AMOUNT_ZSCORE_{n}DAY_WINDOW"] = zscore
    frauds = _DelayedWindows(rows, "CUSTOMER_ID", fraud)
    fraud_total = frauds.prefix_sums(amount)
    start, end = frauds.bounds(LOOKBACK_DAYS - LABEL_DELAY_DAYS)
    mean = share(fraud_total[end] - fraud_total[start], end - start)
    added["CUSTOMER_ID_AMOUNT_OVER_FRAUD_AMOUNT_30DAY_WINDOW"] = np.divide(
        amount, mean, out=np.zeros(len(amount)), where=mean > 0)
    first = np.append(frauds.times, 0)[start]  # read where end > start only
    added["CUSTOMER_ID_DAYS_SINCE_FIRST_KNOWN_FRAUD"] = days_since(frauds.row_times, first,
                                                                   end > start)
    cards = _DelayedWindows(rows, "CUSTOMER_ID", np.ones(len(rows), dtype=bool))
    high = cards.prefix_sums(
        added["CUSTOMER_ID_CLEAN_AMOUNT_RATIO_60DAY_WINDOW"] >= HIGH_AMOUNT_RATIO)
    t = cards.row_times
    start, end = cards.between(t - CARD_COMPROMISE_DAYS * NS_PER_DAY, t - 1)  # earlier rows
    added["CUSTOMER_ID_NB_HIGH_AMOUNT_14DAY_WINDOW"] = high[end] - high[start]
    added["CUSTOMER_ID_HIGH_AMOUNT_SHARE_14DAY_WINDOW"] = share(high[end] - high[start],
                                                                end - start)
    start, end = genuine.bounds(LOOKBACK_DAYS - LABEL_DELAY_DAYS)
    clean_mean = share(total[end] - total[start], end - start)
    added.update(_calendar_span(cards, amount, clean_mean))
    high30 = cards.prefix_sums(
        added["CUSTOMER_ID_CLEAN_AMOUNT_RATIO_30DAY_WINDOW"] >= HIGH_AMOUNT_RATIO)
    start, end = cards.between(t - CARD_COMPROMISE_DAYS * NS_PER_DAY, t - 1)
    added["CUSTOMER_ID_NB_HIGH_AMOUNT_30CLEAN_14DAY_WINDOW"] = high30[end] - high30[start]
    added["CUSTOMER_ID_HIGH_AMOUNT_30CLEAN_SHARE_14DAY_WINDOW"] = share(
        high30[end] - high30[start], end - start)
    return _split_back(frames, added)


def _calendar_span(cards: _DelayedWindows, amount: np.ndarray,
                   clean_mean: np.ndarray) -> dict[str, np.ndarray]:
    """`HIGH_AMOUNT_DAYS_COLUMNS` and `RECENT_CLEAN_COLUMNS` of every row.

    `clean_mean` is each row's known-genuine mean over its delayed 30-day window (0 when
    none); `cards` orders every row.
    """
    high = cards.prefix_sums((clean_mean > 0) & (amount >= HIGH_AMOUNT_RATIO * clean_mean))
    spent = cards.prefix_sums(amount)
    t = cards.row_times
    first_day = t - t % NS_PER_DAY - (CARD_COMPROMISE_DAYS - 1) * NS_PER_DAY
    start, end = cards.between(first_day - 1, t - 1)  # D-13 00:00 up to before t
    rows, high_rows = end - start, high[end] - high[start]
    recent_mean = share(spent[end] - spent[start], rows)
    return {
        "CUSTOMER_ID_NB_HIGH_AMOUNT_14CALENDAR_DAYS": high_rows,
        "CUSTOMER_ID_HIGH_AMOUNT_SHARE_14CALENDAR_DAYS": share(high_rows, rows),
        "CUSTOMER_ID_RECENT_OVER_CLEAN_AMOUNT_14CALENDAR_DAYS": np.divide(
            recent_mean, clean_mean, out=np.ones(len(t)),
            where=(rows > 0) & (clean_mean > 0)),
    }


def _all_rows(frames: dict, columns: list[str]) -> pd.DataFrame:
    """`columns` of every day's frame, in date order, one frame."""
    return pd.concat([frames[d][columns] for d in sorted(frames)], ignore_index=True)


def _split_back(frames: dict, added: dict[str, np.ndarray]) -> dict:
    """Every day's frame with its slice of the `added` columns (rows as `_all_rows`)."""
    out, offset = {}, 0
    for d in sorted(frames):
        size = len(frames[d])
        out[d] = frames[d].assign(**{k: v[offset:offset + size] for k, v in added.items()})
        offset += size
    return out


class _DelayedWindows:
    """The `selected` rows of each entity in time order, and every row's delayed windows.

    A row's window ``(t - (7 + n) DAY, t - 7 DAY]`` of its entity is the range
    ``start:end`` of positions in this order, for sums from `prefix_sums`.
    """

    def __init__(self, rows: pd.DataFrame, entity: str, selected: np.ndarray):
        self.row_times = rows["TX_DATETIME"].to_numpy().astype("datetime64[ns]").astype(np.int64)
        entities = rows[entity].to_numpy().astype(np.int64)
        order = np.lexsort((self.row_times[selected], entities[selected]))
        self._order = np.flatnonzero(selected)[order]
        self.times = self.row_times[self._order]
        sorted_entities = entities[self._order]
        self._block_start = np.searchsorted(sorted_entities, entities, side="left")
        self._block_end = np.searchsorted(sorted_entities, entities, side="right")

    def prefix_sums(self, values: np.ndarray) -> np.ndarray:
        """Cumulative sums of the selected rows' `values` in this order, with a leading 0."""
        return np.concatenate(([0.0], np.cumsum(values[self._order])))

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per row, ``start, end``: its entity's selected rows in its n-day delayed window."""
        return self.between(self.row_times - (LABEL_DELAY_DAYS + n) * NS_PER_DAY,
                            self.row_times - LABEL_DELAY_DAYS * NS_PER_DAY)

    def between(self, early: np.ndarray, late: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row, ``start, end``: its entity's selected rows with a time in (early, late]."""
        return (_within_block(self.times, self._block_start, self._block_end, early),
                _within_block(self.times, self._block_start, self._block_end, late))


def _within_block(sorted_times: np.ndarray, start: np.ndarray, end: np.ndarray,
                  bound: np.ndarray) -> np.ndarray:
    """Per row, the position after the last time <= `bound` in its block ``start:end``."""
    # Binary search inside each row's block, all rows at once (blocks are sorted).
    lo, hi = start.copy(), end.copy()
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        go_right = active & (sorted_times[np.minimum(mid, len(sorted_times) - 1)] <= bound)
        lo = np.where(go_right, mid + 1, lo)
        hi = np.where(active & ~go_right, mid, hi)
