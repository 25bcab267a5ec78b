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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainer.features.profiles import LOOKBACK_DAYS

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
DERIVED_COLUMNS = [*CALENDAR_COLUMNS, *FRAUD_COUNT_COLUMNS, *FRAUD_AMOUNT_COLUMNS]
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
    days = sorted(frames)
    rows = pd.concat([frames[d][["TX_DATETIME", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD"]]
                      for d in days], ignore_index=True)
    times = rows["TX_DATETIME"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    terminals = rows["TERMINAL_ID"].to_numpy().astype(np.int64)
    fraud = rows["TX_FRAUD"].to_numpy() == 1
    order = np.lexsort((times[fraud], terminals[fraud]))
    f_terminals, f_times = terminals[fraud][order], times[fraud][order]
    sums = np.concatenate(([0.0], np.cumsum(rows["TX_AMOUNT"].to_numpy()[fraud][order])))
    # Key (terminal, time) as one sortable pair: searchsorted over the terminal block.
    block_start = np.searchsorted(f_terminals, terminals, side="left")
    block_end = np.searchsorted(f_terminals, terminals, side="right")
    added = {}
    for name, n in FRAUD_AMOUNT_COLUMNS.items():
        late = times - LABEL_DELAY_DAYS * NS_PER_DAY
        early = times - (LABEL_DELAY_DAYS + n) * NS_PER_DAY
        upto = _within_block(f_times, block_start, block_end, late)
        after = _within_block(f_times, block_start, block_end, early)
        count = upto - after
        added[name] = np.divide(sums[upto] - sums[after], count,
                                out=np.zeros(len(count)), where=count > 0)
    out, offset = {}, 0
    for d in days:
        size = len(frames[d])
        out[d] = frames[d].assign(**{k: v[offset:offset + size] for k, v in added.items()})
        offset += size
    return out


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
