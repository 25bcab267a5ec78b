"""The fraud-detection handbook's transaction simulator, vectorised with numpy.

Source: Le Borgne, Siblini, Lebichot, Bontempi, "Reproducible Machine Learning for Credit
Card Fraud Detection - Practical Handbook" (2022), chapter 3; rules restated in docs/facts.md
section 2. Written from that description; no code is copied.

Rules implemented:

* Customers: x, y ~ U(0, 100), mean_amount ~ U(5, 100), std_amount = mean_amount / 2,
  mean_nb_tx_per_day ~ U(0, 4). Terminals: x, y ~ U(0, 100). A customer uses the
  terminals at Euclidean distance < radius.
* Each customer and day: Poisson(mean_nb_tx_per_day) transactions; time of day
  int(N(43200, 20000)) kept only if 0 < t < 86400; amount N(mean, std), redrawn from
  U(0, 2 * mean) if negative, rounded to cents; terminal uniform among the available ones
  (a customer with none makes no transaction).
* Scenario 1: amount > 220 is fraud. Scenario 2: each day two terminals are compromised
  and every transaction on them that day and the 27 days after is fraud. Scenario 3: each
  day three customers are compromised; of their transactions that day and the 13 days
  after, int(n / 3) chosen at random get amount x 5 and are fraud. Scenarios are applied
  in order 1, 2, 3, so a later one overwrites the scenario label. TX_FRAUD = 1 for all.
* Rows sorted by datetime; TRANSACTION_ID is the rank over the whole simulation.

Design choices beyond the handbook, and why:

* Days are generated one at a time from their own random streams, keyed by
  (seed, stream, day). Scenario 3 needs the next 13 days of a customer's transactions, so
  the generator keeps a look-ahead buffer of 14 raw days, always generated past the last
  requested day. Hence day D's rows depend on the config and on D only: simulating 30 days
  gives exactly the first 30 days of a 183-day run (a daily job can extend a dataset), and
  memory stays at about 14 days of rows whatever the length.
* Compromises happen on every simulated day (the handbook's loops stop one day short).
* Ties in time keep generation order (customer id), so output is deterministic.
* Scenario 3 amounts are rounded to cents again after the x 5, so every amount stays a
  whole number of cents.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trainer.data.formats import FORMATS
from trainer.data.schema import COLUMNS
from trainer.share.files import atomic_path

SECONDS_PER_DAY = 86_400
TIME_MEAN, TIME_STD = SECONDS_PER_DAY / 2, 20_000
FRAUD_AMOUNT_THRESHOLD = 220.0
TERMINALS_PER_DAY, TERMINAL_WINDOW_DAYS = 2, 28
CUSTOMERS_PER_DAY, CUSTOMER_WINDOW_DAYS = 3, 14
AMOUNT_FACTOR = 5

# Random streams: each (seed, stream, day) gets its own generator.
_CUSTOMERS, _TERMINALS, _TRANSACTIONS, _SCENARIO_2, _SCENARIO_3 = range(5)


def _rng(seed: int, stream: int, day: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, day]))


@dataclass(frozen=True)
class SimulationConfig:
    """Size and seed of a simulation (handbook defaults)."""

    start: dt.date = dt.date(2018, 4, 1)
    """First simulated day; TX_TIME_SECONDS and TX_TIME_DAYS count from its midnight."""
    days: int = 183
    """Number of days to produce."""
    customers: int = 5_000
    """Number of customer profiles."""
    terminals: int = 10_000
    """Number of terminal profiles."""
    radius: float = 5.0
    """A customer uses the terminals closer than this (in the 100 x 100 square)."""
    seed: int = 0
    """Seed of every random stream; same seed, same output."""

    def __post_init__(self) -> None:
        for name in ("days", "customers", "terminals"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.customers < CUSTOMERS_PER_DAY:
            raise ValueError(f"customers must be at least {CUSTOMERS_PER_DAY} (scenario 3)")
        if self.terminals < TERMINALS_PER_DAY:
            raise ValueError(f"terminals must be at least {TERMINALS_PER_DAY} (scenario 2)")
        if not self.radius > 0:
            raise ValueError(f"radius must be positive, got {self.radius}")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")


@dataclass(frozen=True)
class Profiles:
    """Customer and terminal profiles, and each customer's usable terminals."""

    customer_xy: np.ndarray
    mean_amount: np.ndarray
    std_amount: np.ndarray
    mean_nb_tx_per_day: np.ndarray
    terminal_xy: np.ndarray
    available_start: np.ndarray
    """Customer c uses `available_terminals[available_start[c]:][:nb_available[c]]`."""
    nb_available: np.ndarray
    available_terminals: np.ndarray

    def terminals_of(self, customer: int) -> np.ndarray:
        """Terminal ids customer `customer` may use, ascending."""
        lo = self.available_start[customer]
        return self.available_terminals[lo : lo + self.nb_available[customer]].astype(np.int64)


def make_profiles(config: SimulationConfig) -> Profiles:
    """Draw customer and terminal profiles and link each customer to nearby terminals."""
    rng = _rng(config.seed, _CUSTOMERS)
    customer_xy = rng.uniform(0, 100, size=(config.customers, 2))
    mean_amount = rng.uniform(5, 100, size=config.customers)
    mean_nb_tx_per_day = rng.uniform(0, 4, size=config.customers)
    terminal_xy = _rng(config.seed, _TERMINALS).uniform(0, 100, size=(config.terminals, 2))
    start, count, flat = _terminals_within_radius(customer_xy, terminal_xy, config.radius)
    return Profiles(
        customer_xy=customer_xy,
        mean_amount=mean_amount,
        std_amount=mean_amount / 2,
        mean_nb_tx_per_day=mean_nb_tx_per_day,
        terminal_xy=terminal_xy,
        available_start=start,
        nb_available=count,
        available_terminals=flat,
    )


def _terminals_within_radius(
    customer_xy: np.ndarray, terminal_xy: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, count, flat terminal ids) of the terminals at distance < radius of each customer.

    Both sides are binned on a grid of cells at least `radius` wide, so a customer only
    meets the terminals of its own and the 8 neighbouring cells: the cost grows with the
    number of close pairs, not with customers x terminals (50,000 x 100,000 stays cheap).
    Each customer's ids come out ascending; ids are stored as int32 to halve the memory.
    """
    side = max(1, min(int(100 // radius), 512))
    width = 100 / side

    def cells(xy: np.ndarray) -> np.ndarray:
        ij = np.minimum((xy // width).astype(np.int64), side - 1)
        return ij[:, 0] * side + ij[:, 1]

    terminal_cell = cells(terminal_xy)
    terminal_order = np.argsort(terminal_cell, kind="stable")  # ids ascending in a cell
    cell_bounds = np.searchsorted(terminal_cell[terminal_order], np.arange(side * side + 1))
    customer_cell = cells(customer_xy)
    customer_order = np.argsort(customer_cell, kind="stable")
    customer_bounds = np.searchsorted(customer_cell[customer_order], np.arange(side * side + 1))

    start = np.zeros(len(customer_xy), dtype=np.int64)
    count = np.zeros(len(customer_xy), dtype=np.int64)
    pieces, filled = [], 0
    for cell in np.flatnonzero(np.diff(customer_bounds)):
        members = customer_order[customer_bounds[cell] : customer_bounds[cell + 1]]
        i, j = divmod(int(cell), side)
        candidates = np.sort(
            np.concatenate(
                [
                    terminal_order[cell_bounds[a * side + b] : cell_bounds[a * side + b + 1]]
                    for a in range(max(0, i - 1), min(side, i + 2))
                    for b in range(max(0, j - 1), min(side, j + 2))
                ]
            )
        )
        delta = customer_xy[members, None, :] - terminal_xy[None, candidates, :]
        close = (delta**2).sum(axis=2) < radius * radius
        rows, cols = np.nonzero(close)  # row-major: grouped by customer, ids ascending
        per_customer = close.sum(axis=1)
        count[members] = per_customer
        start[members] = filled + np.concatenate([[0], np.cumsum(per_customer)[:-1]])
        pieces.append(candidates[cols].astype(np.int32))
        filled += len(cols)
    flat = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    return start, count, flat


@dataclass
class _RawDay:
    """One day's transactions in time order; amount and labels change as frauds land."""

    seconds: np.ndarray  # seconds since the day's midnight
    customer: np.ndarray
    terminal: np.ndarray
    amount: np.ndarray
    fraud: np.ndarray
    scenario: np.ndarray


def _draw_day(config: SimulationConfig, profiles: Profiles, day: int) -> _RawDay:
    """Legitimate transactions of one day, with scenario 1 and 2 labels applied."""
    rng = _rng(config.seed, _TRANSACTIONS, day)
    counts = rng.poisson(profiles.mean_nb_tx_per_day)
    customer = np.repeat(np.arange(config.customers, dtype=np.int64), counts)
    # int() truncates towards zero; the handbook keeps 0 < t < 86400 only.
    seconds = np.trunc(rng.normal(TIME_MEAN, TIME_STD, size=len(customer))).astype(np.int64)
    keep = (seconds > 0) & (seconds < SECONDS_PER_DAY) & (profiles.nb_available[customer] > 0)
    customer, seconds = customer[keep], seconds[keep]

    mean = profiles.mean_amount[customer]
    amount = rng.normal(mean, profiles.std_amount[customer])
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean[negative])
    amount = np.round(amount, 2)
    pick = rng.integers(0, profiles.nb_available[customer])
    terminal = profiles.available_terminals[profiles.available_start[customer] + pick].astype(
        np.int64
    )

    order = np.argsort(seconds, kind="stable")
    raw = _RawDay(
        seconds=seconds[order],
        customer=customer[order],
        terminal=terminal[order],
        amount=amount[order],
        fraud=np.zeros(len(order), dtype=np.int64),
        scenario=np.zeros(len(order), dtype=np.int64),
    )
    scenario_1 = raw.amount > FRAUD_AMOUNT_THRESHOLD
    raw.fraud[scenario_1], raw.scenario[scenario_1] = 1, 1
    compromised = np.concatenate(
        [
            compromised_terminals(config, d)
            for d in range(max(0, day - TERMINAL_WINDOW_DAYS + 1), day + 1)
        ]
    )
    scenario_2 = np.isin(raw.terminal, compromised)
    raw.fraud[scenario_2], raw.scenario[scenario_2] = 1, 2
    return raw


@functools.lru_cache(maxsize=64)  # each day's draw is read by the 28 days it covers
def compromised_terminals(config: SimulationConfig, day: int) -> np.ndarray:
    """The two terminals compromised on `day` (0-based), fraudulent for 28 days."""
    terminals = _rng(config.seed, _SCENARIO_2, day).choice(
        config.terminals, size=TERMINALS_PER_DAY, replace=False
    )
    terminals.setflags(write=False)  # cached: shared by every caller
    return terminals


def compromised_customers(config: SimulationConfig, day: int) -> np.ndarray:
    """The three customers compromised on `day` (0-based), partly fraudulent for 14 days."""
    return _scenario_3_draws(config, day)[1]


def _scenario_3_draws(config: SimulationConfig, day: int) -> tuple[np.random.Generator, np.ndarray]:
    """The day's scenario-3 stream and its first draw, the compromised customers."""
    rng = _rng(config.seed, _SCENARIO_3, day)
    return rng, rng.choice(config.customers, size=CUSTOMERS_PER_DAY, replace=False)


def _apply_scenario_3(config: SimulationConfig, day: int, window: list[_RawDay]) -> None:
    """Compromise three customers on `day`; `window` holds raw days day .. day+13."""
    rng, customers = _scenario_3_draws(config, day)
    for customer in customers:
        positions = [np.flatnonzero(raw.customer == customer) for raw in window]
        sizes = [len(p) for p in positions]
        total = sum(sizes)
        chosen = np.sort(rng.choice(total, size=total // 3, replace=False))
        bounds = np.cumsum([0, *sizes])
        for raw, rows, lo, hi in zip(window, positions, bounds[:-1], bounds[1:], strict=True):
            picked = rows[chosen[(chosen >= lo) & (chosen < hi)] - lo]
            raw.amount[picked] = np.round(raw.amount[picked] * AMOUNT_FACTOR, 2)
            raw.fraud[picked], raw.scenario[picked] = 1, 3


def simulate(
    start: dt.date | str = dt.date(2018, 4, 1),
    days: int = 183,
    customers: int = 5_000,
    terminals: int = 10_000,
    radius: float = 5.0,
    seed: int = 0,
) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """Generate the handbook's transactions day by day.

    Args:
        start: First day (date or ISO string).
        days: Number of days.
        customers: Number of customers.
        terminals: Number of terminals.
        radius: A customer uses the terminals closer than this.
        seed: Seed of all random draws.

    Yields:
        (date, frame) per day, in date order; the frame has the canonical columns and
        dtypes of `trainer.data.schema.COLUMNS` and a default RangeIndex.

    Raises:
        ValueError: A parameter is out of range (the message names it); raised by the
            call itself, before any day is generated.
    """
    if isinstance(start, str):
        start = dt.date.fromisoformat(start)
    return simulate_config(SimulationConfig(start, days, customers, terminals, radius, seed))


def simulate_config(config: SimulationConfig) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """`simulate` for a ready-made config."""
    profiles = make_profiles(config)
    buffer: dict[int, _RawDay] = {}
    origin = np.datetime64(config.start.isoformat(), "ns")
    next_id = 0
    for day in range(config.days):
        # Scenario 3 of `day` reaches 13 days ahead; those days exist past the last day
        # too, so a shorter run is an exact prefix of a longer one.
        for ahead in range(day, day + CUSTOMER_WINDOW_DAYS):
            if ahead not in buffer:
                buffer[ahead] = _draw_day(config, profiles, ahead)
        _apply_scenario_3(config, day, [buffer[d] for d in range(day, day + CUSTOMER_WINDOW_DAYS)])
        raw = buffer.pop(day)
        frame = _to_frame(raw, day, next_id, origin)
        next_id += len(frame)
        yield config.start + dt.timedelta(days=day), frame


def _to_frame(raw: _RawDay, day: int, first_id: int, origin: np.datetime64) -> pd.DataFrame:
    since_start = raw.seconds + day * SECONDS_PER_DAY
    columns = {
        "TRANSACTION_ID": np.arange(first_id, first_id + len(raw.seconds), dtype=np.int64),
        "TX_DATETIME": origin + since_start.astype("timedelta64[s]").astype("timedelta64[ns]"),
        "CUSTOMER_ID": raw.customer,
        "TERMINAL_ID": raw.terminal,
        "TX_AMOUNT": raw.amount,
        "TX_TIME_SECONDS": since_start,
        "TX_TIME_DAYS": np.full(len(raw.seconds), day, dtype=np.int64),
        "TX_FRAUD": raw.fraud,
        "TX_FRAUD_SCENARIO": raw.scenario,
    }
    return pd.DataFrame({name: np.asarray(columns[name], dtype=COLUMNS[name]) for name in COLUMNS})


def to_sample_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the GKE sample stores it in its pickles (docs/facts.md#the-gke-sample).

    TX_DATETIME becomes int64 nanoseconds; CUSTOMER_ID, TERMINAL_ID, TX_TIME_SECONDS and
    TX_TIME_DAYS become `object` columns of Python ints; the index is TRANSACTION_ID's
    value, as in the sample (its files keep the global row number as index).
    """
    sample = frame.copy()
    sample["TX_DATETIME"] = frame["TX_DATETIME"].to_numpy(dtype="datetime64[ns]").view("int64")
    for name in ("CUSTOMER_ID", "TERMINAL_ID", "TX_TIME_SECONDS", "TX_TIME_DAYS"):
        sample[name] = pd.Series(frame[name].tolist(), index=frame.index, dtype=object)
    sample.index = pd.Index(frame["TRANSACTION_ID"].to_numpy(), dtype="int64")
    return sample



def write_day(frame: pd.DataFrame, out_dir: str | Path, day: dt.date, fmt: str = "parquet") -> Path:
    """Write one simulated day atomically as `<out_dir>/<date>.<fmt>`.

    Parquet keeps the canonical dtypes; `pkl` writes the GKE sample's layout (see
    `to_sample_dtypes`). Writing a pickle is harmless; only loading one is restricted.

    Returns:
        The final path.

    Raises:
        ValueError: `fmt` is not one of FORMATS.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    final = Path(out_dir) / f"{day.isoformat()}.{fmt}"
    with atomic_path(final) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, engine="pyarrow", index=False, compression="snappy")
        else:
            # Protocol 4 is what the sample's files use.
            tmp.write_bytes(pickle.dumps(to_sample_dtypes(frame), protocol=4))
        # mkstemp makes the file private (0600); other pods on the share must read it.
        os.chmod(tmp, 0o644)
    return final
