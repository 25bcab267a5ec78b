"""The carried feature state: a day's 15 features from that day, a few boundary days and sums.

Every window of ``trainer.features.compute`` for a transaction at time t of day D is whole
days plus at most two partial days:

- customers, ``(t - n days, t]``: the rows of day D-n after ``t - n days`` (a partial
  day), the full days D-n+1 .. D-1, and day D up to the transaction itself;
- terminals, ``(t - (7 + n) days, t - 7 days]``: the rows of day D-7-n after
  ``t - (7 + n) days``, the full days D-6-n .. D-8, and the rows of day D-7 up to
  ``t - 7 days``.

The full days' per-entity sums are the *state aligned to D*; the partial days, the
*boundary days* D-1, D-7, D-8, D-14, D-30 and D-37, are read raw with D itself, because
a partial day's share depends on each transaction's time of day. That is seven days
whatever the window lengths. Moving the state from D to a later day D' adds the days
entering each window and subtracts those leaving; for D' = D + 1 they are D'-1, D'-7,
D'-30 (customers) and D'-8, D'-14, D'-37 (terminals), all boundary days of D' already
read. A gap in the chain reads the few more days it needs, or rebuilds the state from the
raw history when that reads less.

Counts are integers; amount sums are double-doubles (``trainer.features.exact_sums``), and
a sum whose count returns to 0 is reset to exactly 0, so months of additions and
subtractions do not drift. An entity leaves the state when its longest window is empty,
which bounds the state to the entities active in the last 37 days.

The same state gives the 11 behaviour-profile inputs of `trainer.features.profiles` (their
definitions and raw-history reference), so it also carries: per customer the sum of squared
amounts of each window and the time of its last transaction among the 30-day window's full
days; per customer, over the delayed 30-day window ``(t - 37 days, t - 7 days]`` (the kind
``D``, read from the same boundary days as the terminals), counts and known frauds; per
terminal the amount sum of each delayed window, the time of its last fraud among the 30-day
window's full days, and each full day's first fraud time (a sparse list: a minimum, unlike a
maximum, is lost when its day leaves the window, and the next one must be at hand).

A chain whose learner reads the card inputs (`trainer.features.cards`) carries more,
`kinds(True)` and `HighRows` (`trainer.features.state_cards` says what and why); every
other chain's state and its file are as they were without them.

This module holds the state's shape and its window algebra (which days a state holds and
which a step reads); the rest is computation on arrays, one job per module:
`state_sums` (per-entity day sums, rolling them in and out), `state_windows` (each row's
window totals), `state_profiles` (the profile inputs from those windows), `state_advance`
(`advance`: the next state and the day's features) and `state_file` (the Parquet file).
Reading days and the state from the share is `trainer.features.carried`.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field, replace

import numpy as np

from trainer.features.cards import CARD_HISTORY_DAYS, CARD_INPUT_COLUMNS
from trainer.features.compute import (
    CUSTOMER_WINDOWS_DAYS,
    INPUT_COLUMNS,
    TERMINAL_DELAY_DAYS,
    TERMINAL_WINDOWS_DAYS,
)

#: Windows with whole days inside them (the 1-day windows are two partial days; 14 is the
#: card inputs' span of whole days, `RECENT_CUSTOMERS`).
CARRIED_WINDOWS_DAYS = (7, 14, 30)
#: The time a `last_time` has when the entity has none in its window.
NO_TIME = np.iinfo(np.int64).min

#: A day's columns as numpy arrays: ``INPUT_COLUMNS`` (TRANSACTION_ID only for the day
#: whose features are computed), TX_DATETIME as int64 nanoseconds, TX_FRAUD as int64.
DayColumns = dict[str, np.ndarray]


@dataclass(frozen=True)
class Kind:
    """What is carried for one entity column."""

    prefix: str
    id_column: str
    delay_days: int
    windows: tuple[int, ...]  # window lengths of the features, in days
    floats: tuple[str, ...]  # double-double sums
    ints: tuple[str, ...]  # integer sums
    last_time_of_frauds: bool  # LAST_TIME: of a fraud (terminals) or of any row
    first_frauds: bool = False  # each full day's first fraud time, per entity

    @property
    def carried(self) -> tuple[int, ...]:
        """The windows with whole days inside them (a 1-day window is two partial days)."""
        return tuple(n for n in self.windows if n in CARRIED_WINDOWS_DAYS)

    @property
    def columns(self) -> tuple[str, ...]:
        """The input columns this kind's sums read."""
        return ("TX_DATETIME", self.id_column, "TX_AMOUNT",
                *(("TX_FRAUD",) if self.ints or self.last_time_of_frauds else ()))

    def full_days(self, n: int, aligned: dt.date) -> list[dt.date]:
        """The whole days inside the n-day window of a transaction on day `aligned`."""
        return list(_full_days(self.delay_days, n, aligned))

    def row_values(self, day: DayColumns) -> dict[str, np.ndarray]:
        """Per summed value of this kind ("AMOUNT", "AMOUNT_SQ", "NB_FRAUD"), each row's."""
        amounts = day["TX_AMOUNT"]
        values = {"AMOUNT": lambda: amounts, "AMOUNT_SQ": lambda: amounts * amounts,
                  "NB_FRAUD": lambda: day["TX_FRAUD"],
                  "GENUINE_AMOUNT": lambda: np.where(day["TX_FRAUD"] == 0, amounts, 0.0)}
        return {name: values[name]() for name in self.floats + self.ints}


@functools.lru_cache(maxsize=1024)
def _full_days(delay_days: int, n: int, aligned: dt.date) -> tuple[dt.date, ...]:
    last = aligned - dt.timedelta(days=delay_days + 1)
    return tuple(last - dt.timedelta(days=back) for back in range(n - 2, -1, -1))


#: The double-double sums the features read, per kind: the 15, and with the profiles.
FEATURE_FLOATS = {"C": ("AMOUNT",), "D": (), "T": ()}
PROFILE_FLOATS = {"C": ("AMOUNT", "AMOUNT_SQ"), "D": (), "T": ("AMOUNT",)}

CUSTOMERS = Kind("C", "CUSTOMER_ID", 0, CUSTOMER_WINDOWS_DAYS, ("AMOUNT", "AMOUNT_SQ"), (),
                  False)
#: Customers over the terminals' delayed 30-day window: a customer's known fraud share.
DELAYED_CUSTOMERS = Kind("D", "CUSTOMER_ID", TERMINAL_DELAY_DAYS, (30,), (), ("NB_FRAUD",),
                          True)
TERMINALS = Kind("T", "TERMINAL_ID", TERMINAL_DELAY_DAYS, TERMINAL_WINDOWS_DAYS, ("AMOUNT",),
                  ("NB_FRAUD",), True, first_frauds=True)
KINDS = (CUSTOMERS, DELAYED_CUSTOMERS, TERMINALS)
#: The card inputs' state (`trainer.features.state_cards`), carried by their chains only:
#: the delayed customers with their genuine rows' amount sum (the clean mean), and per
#: customer its rows and amount over the whole days D-13 .. D-1.
DELAYED_CARDS = replace(DELAYED_CUSTOMERS, floats=("GENUINE_AMOUNT",))
RECENT_CUSTOMERS = Kind("R", "CUSTOMER_ID", 0, (14,), ("AMOUNT",), (), False)
CARD_KINDS = (CUSTOMERS, DELAYED_CARDS, TERMINALS, RECENT_CUSTOMERS)


def kinds(cards: bool) -> tuple[Kind, ...]:
    """The kinds a state carries: with the card inputs' sums or without."""
    return CARD_KINDS if cards else KINDS

#: The sentinel of "no fraud" in a per-entity minimum of fraud times.
NO_FIRST = np.iinfo(np.int64).max


@dataclass
class EntitySums:
    """Per-entity sums over the full days of each carried window, for one entity kind."""

    ids: np.ndarray
    counts: dict[int, np.ndarray]
    floats: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]
    ints: dict[tuple[str, int], np.ndarray]
    last_time: np.ndarray
    first_frauds: tuple[np.ndarray, np.ndarray] = (np.array([], np.int64),
                                                   np.array([], np.int64))
    """Each full day's first fraud of an entity as (entity position, time) pairs, sorted by
    position (kinds with ``first_frauds`` only; empty otherwise)."""

    @classmethod
    def empty(cls, kind: Kind, ids: np.ndarray) -> EntitySums:
        """All-zero sums for `ids`."""
        k = len(ids)
        return cls(
            ids=ids,
            counts={n: np.zeros(k, np.int64) for n in kind.carried},
            floats={(name, n): (np.zeros(k), np.zeros(k)) for name in kind.floats
                    for n in kind.carried},
            ints={(name, n): np.zeros(k, np.int64) for name in kind.ints
                  for n in kind.carried},
            last_time=np.full(k, NO_TIME, np.int64),
        )

    def first_fraud_time(self) -> np.ndarray:
        """Per entity, the earliest of `first_frauds` (NO_FIRST when none)."""
        first = np.full(len(self.ids), NO_FIRST, np.int64)
        np.minimum.at(first, *self.first_frauds)
        return first

    def padded(self, kind: Kind, ids: np.ndarray) -> EntitySums:
        """These sums for `ids`, whose first entries are this state's ids in order."""
        out = EntitySums.empty(kind, ids)
        k = len(self.ids)
        for n, counts in self.counts.items():
            out.counts[n][:k] = counts
        for key, (hi, lo) in self.floats.items():
            out.floats[key][0][:k], out.floats[key][1][:k] = hi, lo
        for key, values in self.ints.items():
            out.ints[key][:k] = values
        out.last_time[:k] = self.last_time
        out.first_frauds = self.first_frauds
        return out

    def select(self, keep: np.ndarray) -> EntitySums:
        """The entities where the boolean mask `keep` is true."""
        positions, times = self.first_frauds
        kept = keep[positions]
        renumbered = np.cumsum(keep) - 1
        return EntitySums(
            ids=self.ids[keep],
            counts={n: c[keep] for n, c in self.counts.items()},
            floats={key: (hi[keep], lo[keep]) for key, (hi, lo) in self.floats.items()},
            ints={key: v[keep] for key, v in self.ints.items()},
            last_time=self.last_time[keep],
            first_frauds=(renumbered[positions[kept]], times[kept]),
        )


@dataclass
class HighRows:
    """Per card and day, its number of high rows (`trainer.features.cards`), if any.

    A sparse list of (card, day) pairs. A row's flag compares it with its own delayed
    window, which a later step cannot recompute from the days it reads, so each day's flags
    are kept from the step that computed them while the day is in a later day's span.
    """

    ids: np.ndarray
    days: np.ndarray
    """Day of each pair, in days since 1970-01-01."""
    counts: np.ndarray


@dataclass
class FeatureState:
    """The state aligned to `day`: window sums of the full days before `day`'s windows.

    ``inputs`` maps each day whose rows the sums hold (ISO date) to the dataset's sha256
    as the ingest manifest recorded it when the day was folded in (or ``"unlisted"``).
    """

    day: dt.date
    sums: dict[str, EntitySums]
    """Per kind prefix (``C``, ``D``, ``T``), that kind's sums."""
    inputs: dict[str, str] = field(default_factory=dict)
    high_rows: HighRows | None = None
    """With the card inputs' state (`kinds(True)`): the high rows of days D-12 .. D."""

    @property
    def cards(self) -> bool:
        """Whether this state carries the card inputs' sums."""
        return self.high_rows is not None

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The kinds this state carries."""
        return kinds(self.cards)

    def of(self, kind: Kind) -> EntitySums:
        """The sums of `kind`."""
        return self.sums[kind.prefix]

    @property
    def customers(self) -> EntitySums:
        """The customers' sums."""
        return self.sums[CUSTOMERS.prefix]

    @property
    def terminals(self) -> EntitySums:
        """The terminals' sums."""
        return self.sums[TERMINALS.prefix]


def boundary_days(day: dt.date) -> list[dt.date]:
    """The days read raw for `day`'s features: `day`, then its partial window days."""
    backs = sorted({0, 1, *CUSTOMER_WINDOWS_DAYS,
                    *(TERMINAL_DELAY_DAYS + n for n in (0, *TERMINAL_WINDOWS_DAYS))})
    return [day - dt.timedelta(days=back) for back in backs]


def held_days(aligned: dt.date, cards: bool = False) -> list[dt.date]:
    """The days whose rows a state aligned to `aligned` holds, oldest first.

    With the card inputs, the flags of days up to `aligned` itself depend on every day
    back to the first one's delayed window (`cards.CARD_HISTORY_DAYS`).
    """
    days = {d for kind in kinds(cards) for n in kind.carried
            for d in kind.full_days(n, aligned)}
    if cards:
        days |= {aligned - dt.timedelta(days=back) for back in range(CARD_HISTORY_DAYS)}
    return sorted(days)


def window_moves(kind: Kind, n: int, old: dt.date | None,
           new: dt.date) -> tuple[list[dt.date], list[dt.date]]:
    """Days entering and leaving the n-day window's full days from `old` to `new`."""
    after = set(kind.full_days(n, new))
    before = set(kind.full_days(n, old)) if old is not None else set()
    return sorted(after - before), sorted(before - after)


def roll_days(old: dt.date | None, new: dt.date, cards: bool = False) -> set[dt.date]:
    """Every day entering or leaving some window when a state moves from `old` to `new`."""
    return {d for kind in kinds(cards) for n in kind.carried
            for moved in window_moves(kind, n, old, new) for d in moved}


def rolls_from(state: FeatureState | None, day: dt.date, cards: bool = False) -> bool:
    """Whether `day`'s state is best made from `state` rather than rebuilt from nothing.

    Rolling reads the days entering and leaving the windows; a long gap makes that more
    than the rebuild's whole history. The card inputs' state rolls by one day only: the
    flags of a day missed in a gap were never computed (a rebuild computes them).
    """
    if state is None or state.day >= day:
        return False
    if cards:
        return state.cards and day == state.day + dt.timedelta(days=1)
    return len(roll_days(state.day, day)) <= len(roll_days(None, day))


def days_to_read(state: FeatureState | None, day: dt.date,
                 cards: bool = False) -> list[dt.date]:
    """Every day `advance(state, day, ...)` reads (those not on the share count as empty)."""
    return sorted(columns_to_read(state, day, cards))


def columns_to_read(state: FeatureState | None, day: dt.date,
                    cards: bool = False) -> dict[dt.date, list[str]]:
    """The input columns `advance(state, day, ...)` reads of each day it reads.

    The day itself needs them all; a day only some entity kinds read (a customer window's
    edge D-1 or D-30, a terminal window's D-8 or D-14) needs those kinds' only. A rebuild
    of the card inputs' state also reads the customers of the `CARD_HISTORY_DAYS` before
    `day`, for the flags of its span's days.
    """
    old = state.day if state is not None and rolls_from(state, day, cards) else None
    needed: dict[dt.date, set[str]] = {day: set(INPUT_COLUMNS)}
    if cards and old is None:
        for back in range(1, CARD_HISTORY_DAYS + 1):
            needed[day - dt.timedelta(days=back)] = set(CARD_INPUT_COLUMNS)
    for kind in kinds(cards):
        backs = [kind.delay_days + n for n in (0, *kind.windows)]
        kind_days = {day - dt.timedelta(days=back) for back in backs}
        kind_days |= {d for n in kind.carried for moved in window_moves(kind, n, old, day)
                      for d in moved}
        for d in kind_days:
            needed.setdefault(d, set()).update(kind.columns)
    return {d: [name for name in INPUT_COLUMNS if name in names]
            for d, names in sorted(needed.items())}
