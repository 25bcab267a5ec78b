"""A training step's features from the carried state: read, verify, advance, serialise.

The step gives the head's state (``share.feature_state(head day)``, its sha256 from the
lineage); this module checks it, reads the few days ``trainer.features.state`` needs (each
file read once, its sha256 checked against the ingest manifest like the raw path's
``check_history``), and returns the day's features with the new state's Parquet bytes.

When the state cannot be used it is rebuilt from the raw history, the reference path, so
the features are the same either way: a chain trained before the state existed (no sha in
its head entry), a missing or altered state file, a state of another format, or a history
that changed under it (a day of its windows re-ingested, or a late day ingested without a
replay): the state records, per day it holds, the dataset sha256 the manifest listed when
the day was folded in, and any difference from the manifest now means a rebuild.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from trainer.data.parquet import read_buffer, table_from_bytes
from trainer.errors import DatasetValidationError
from trainer.features.cards import CARD_HISTORY_DAYS
from trainer.features.compute import HISTORY_DAYS, first_repeated_row
from trainer.features.state import DayColumns, FeatureState, columns_to_read, held_days, rolls_from
from trainer.features.state_advance import advance
from trainer.features.state_file import from_parquet, to_parquet
from trainer.features.store import history_days, verified_sha256
from trainer.share.files import sha256_bytes
from trainer.share.layout import Share
from trainer.share.manifest import manifest_key, read_manifest

log = logging.getLogger(__name__)

#: The inputs record of a day on the share that the ingest manifest does not list.
UNLISTED = "unlisted"


@dataclass
class CarriedFeatures:
    """A day's features and the state after it, with what it cost to get them."""

    features: pd.DataFrame
    state: FeatureState
    state_bytes: bytes
    state_sha256: str
    days_read: list[str]
    bytes_read: int
    rebuilt: str | None
    """Why the state was rebuilt from the raw history, or None if it was carried."""


def _listed(share: Share, manifest: dict[str, dict], day: dt.date) -> str | None:
    """The inputs record of `day` now: its manifest sha256, UNLISTED, or None (absent)."""
    recorded = manifest.get(manifest_key("training", day), {}).get("dataset_sha256")
    if recorded is not None:
        return recorded
    return UNLISTED if share.training_dataset(day).is_file() else None


def _inputs(share: Share, manifest: dict[str, dict], aligned: dt.date,
            cards: bool = False) -> dict[str, str]:
    return {d.isoformat(): listed for d in held_days(aligned, cards)
            if (listed := _listed(share, manifest, d)) is not None}


def load_state(share: Share, day: dt.date | None, sha256: str | None,
               manifest: dict[str, dict],
               cards: bool = False) -> tuple[FeatureState | None, str | None]:
    """The state committed for `day` if it verifies and still matches the history.

    Returns:
        The state, or None and the reason it cannot be used.
    """
    if day is None:
        return None, "a new chain"
    if sha256 is None:
        return None, f"the head ({day}) has no feature state recorded (trained before it existed)"
    path = share.feature_state(day)
    try:
        data = read_buffer(path)
    except FileNotFoundError:
        return None, f"{path} is missing"
    found = sha256_bytes(data)
    if found != sha256:
        return None, (f"{path} has sha256 {found[:12]}..., the lineage records "
                      f"{sha256[:12]}...")
    try:
        state = from_parquet(data, str(path))
    except DatasetValidationError as exc:
        return None, str(exc)
    if state.day != day:
        return None, f"{path} holds the state of {state.day}, not {day}"
    if state.cards != cards:
        return None, (f"{path} {'holds' if state.cards else 'has no'} card inputs' sums; "
                      f"the learner reads {'them' if cards else 'none'}")
    now = _inputs(share, manifest, day, cards)
    if now != state.inputs:
        changed = sorted(set(now.items()) ^ set(state.inputs.items()))
        return None, (f"the history under {path} changed since it was built (days "
                      f"{sorted({key for key, _ in changed})}: re-ingested, or ingested late)")
    return state, None


def _ids(column: pa.ChunkedArray) -> np.ndarray:
    if column.null_count:  # a missing id is an entity of its own, as in the raw path
        return np.array(column.to_pylist(), dtype=object)
    return column.to_numpy()


def _day_columns(share: Share, manifest: dict[str, dict], d: dt.date, for_day: dt.date,
                 names: list[str]) -> tuple[DayColumns | None, int]:
    """Day `d`'s columns `names` (None when it has no dataset) and the bytes read."""
    path = share.training_dataset(d)
    try:
        data = read_buffer(path)
    except FileNotFoundError:
        verified_sha256(share, manifest, d, None, needed_by=for_day)
        return None, 0
    verified_sha256(share, manifest, d, sha256_bytes(data), needed_by=for_day)
    try:
        table = table_from_bytes(data, names)
    except (pa.ArrowException, OSError, KeyError) as exc:
        raise DatasetValidationError(f"{path}: cannot read columns {names} as Parquet: "
                                     f"{exc}") from exc
    for name in ("TX_DATETIME", "TX_AMOUNT", "TX_FRAUD"):
        if name in names and table.column(name).null_count:
            row = int(np.flatnonzero(table.column(name).is_null().to_numpy(
                zero_copy_only=False))[0])
            raise DatasetValidationError(f"{path}: row {row}: {name} is missing; expected "
                                         f"a value")
    if not pa.types.is_timestamp(table.schema.field("TX_DATETIME").type):
        raise DatasetValidationError(f"{path}: column TX_DATETIME has type "
                                     f"{table.schema.field('TX_DATETIME').type}; expected "
                                     f"a timestamp (see trainer.data.schema.COLUMNS)")
    columns: DayColumns = {
        "TX_DATETIME": table.column("TX_DATETIME").cast(pa.timestamp("ns")).to_numpy()
        .view(np.int64),
        "TX_AMOUNT": table.column("TX_AMOUNT").to_numpy().astype(np.float64, copy=False),
    }
    for name in ("CUSTOMER_ID", "TERMINAL_ID"):
        if name in names:
            columns[name] = _ids(table.column(name))
    if "TX_FRAUD" in names:
        columns["TX_FRAUD"] = table.column("TX_FRAUD").to_numpy().astype(np.int64, copy=False)
    if d == for_day:
        ids = _ids(table.column("TRANSACTION_ID"))
        repeated = first_repeated_row(pd.Series(ids))
        if repeated is not None:
            raise DatasetValidationError(f"{path}: row {repeated}: TRANSACTION_ID "
                                         f"{ids[repeated]} appears twice; expected unique "
                                         f"transaction ids")
        columns["TRANSACTION_ID"] = ids
    return columns, len(data)


def _check_present(share: Share, manifest: dict[str, dict], day: dt.date, cards: bool) -> None:
    """Stop when an ingested day of `day`'s history (37 days, 50 with the cards) is gone.

    The state already holds those days, so the features would not change; but the share is
    the record (a replay or a rebuild reads them again), and a lost file is caught here, at
    the cost of one stat per day. Only the days the step reads have their sha256 checked.
    """
    for d in history_days(day, CARD_HISTORY_DAYS if cards else HISTORY_DAYS):
        if not share.training_dataset(d).is_file():
            verified_sha256(share, manifest, d, None, needed_by=day)


def carried_features(share: Share, day: dt.date, head_day: dt.date | None,
                     head_state_sha256: str | None, *,
                     profiles: bool = False, cards: bool = False) -> CarriedFeatures:
    """`day`'s features from the head's state, and the state to commit with `day`.

    Args:
        share: the storage root.
        day: the day being trained (after `head_day`).
        head_day: the chain head's day, None for a new chain.
        head_state_sha256: the head entry's ``feature_state_sha256`` (None if absent).
        profiles: also compute the 11 profile inputs (``profiles.EXTRA_FEATURE_COLUMNS``),
            appended to the features frame.
        cards: also carry the card inputs' state and compute the 3
            ``cards.CARD_FEATURE_COLUMNS``, appended after the profiles (with `profiles`).

    Raises:
        DatasetValidationError: `day` has no dataset, or a dataset read is malformed.
        IncompleteHistoryError: a day the features read is missing or changed.
    """
    if not share.training_dataset(day).is_file():
        raise DatasetValidationError(f"{share.training_dataset(day)}: no training dataset "
                                     f"for {day.isoformat()}; ingest it first (fraudpipe "
                                     f"ingest)")
    manifest = read_manifest(share)
    _check_present(share, manifest, day, cards)
    state, why = load_state(share, head_day, head_state_sha256, manifest, cards)
    if why is not None and head_day is not None:
        log.warning("feature state: rebuilding %s's from the raw history: %s", day, why)
    days, bytes_read = {}, 0
    for d, names in columns_to_read(state, day, cards).items():
        days[d], size = _day_columns(share, manifest, d, day, names)
        bytes_read += size
    advanced = advance(state, day, days, inputs=_inputs(share, manifest, day, cards),
                       profiles=profiles, cards=cards)
    data = to_parquet(advanced.state)
    rebuilt = why if state is None else None if rolls_from(state, day, cards) else (
        f"{(day - state.day).days - 1} days missing after {state.day}: rebuilding reads less"
        if not cards else f"{(day - state.day).days - 1} days missing after {state.day}: "
        f"the card inputs' flags of those days were never computed")
    return CarriedFeatures(advanced.features, advanced.state, data, sha256_bytes(data),
                           [d.isoformat() for d in sorted(days) if days[d] is not None],
                           bytes_read, rebuilt)
