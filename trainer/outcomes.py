"""What became of each day's list once its labels came: cards confirmed, frauds missed.

The list is the one the team was handed: the day's ranked cards as first scored (on
arrival, before any label; or by the step when the day came labelled), saved once in
``output/lists/<day>.json`` by `save_list` and never overwritten (the step later rescores
an arrived day with the model before it, a different ranking). Once the day has a
training dataset (its labels complete), `record_outcome` compares the first `capacity`
cards of that list with the cards that had a fraud that day and writes
``output/outcomes/<day>.json``: cards checked, confirmed fraud among them, the hit rate,
and the fraudulent cards the list missed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trainer.share.files import atomic_write_text
from trainer.share.layout import Share

#: Cards an analyst team checks a day, unless told otherwise (the handbook's CP@100).
REVIEW_CAPACITY = 100


def list_path(share: Share, day: dt.date) -> Path:
    """``output/lists/<day>.json``: the day's ranked cards as first handed to the team."""
    return share.output_dir / "lists" / f"{day.isoformat()}.json"


def outcome_path(share: Share, day: dt.date) -> Path:
    """``output/outcomes/<day>.json``: the outcome of the day's list."""
    return share.output_dir / "outcomes" / f"{day.isoformat()}.json"


def _json_id(value) -> int | str:
    return int(value) if isinstance(value, int | np.integer) else str(value)


def save_list(share: Share, day: dt.date, customers: np.ndarray, ranks: pd.Series,
              scored_by: str) -> bool:
    """Save the day's ranked cards (best first) unless a list is already saved.

    Returns:
        True if written, False if the day already had its list.
    """
    path = list_path(share, day)
    if path.is_file():
        return False
    ranked = (pd.DataFrame({"card": customers, "rank": ranks.to_numpy()})
              .dropna().drop_duplicates("card").sort_values("rank"))
    atomic_write_text(path, json.dumps(
        {"date": day.isoformat(), "scored_by": scored_by,
         "cards": [_json_id(c) for c in ranked["card"]]}, indent=1) + "\n")
    return True


def record_outcome(share: Share, day: dt.date, capacity: int = REVIEW_CAPACITY) -> dict | None:
    """Compare the day's list with its labels; write and return the outcome (None: not yet).

    None when the day has no saved list or no training dataset (labels not complete).
    """
    listed, dataset = list_path(share, day), share.training_dataset(day)
    if not listed.is_file() or not dataset.is_file():
        return None
    saved = json.loads(listed.read_text())
    checked = [str(c) for c in saved["cards"][:capacity]]
    fraud_cards = _fraud_cards(dataset)
    confirmed = [c for c in checked if c in fraud_cards]
    missed = sorted(fraud_cards - set(checked))
    outcome = {"date": day.isoformat(), "scored_by": saved.get("scored_by"),
               "capacity": capacity, "checked": len(checked), "confirmed": len(confirmed),
               "hit_rate": round(len(confirmed) / len(checked), 4) if checked else None,
               "fraud_cards": len(fraud_cards), "missed": len(missed),
               "confirmed_cards": confirmed, "missed_cards": missed}
    text = json.dumps(outcome, indent=1) + "\n"
    path = outcome_path(share, day)
    # Every run records every list again: an unchanged outcome is not rewritten (no fsync).
    if _read_text(path) != text:
        atomic_write_text(path, text)
    return outcome


def _fraud_cards(dataset: Path) -> set[str]:
    """The cards with a fraud in the training dataset `dataset`, as text."""
    table = pq.ParquetFile(dataset).read(columns=["CUSTOMER_ID", "TX_FRAUD"])
    frauds = table.filter(pc.equal(table["TX_FRAUD"], 1))["CUSTOMER_ID"]
    return {str(card) for card in frauds.to_pylist()}


def _read_text(path: Path) -> str | None:
    """The text of `path`; None when it does not exist."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def record_outcomes(share: Share, capacity: int = REVIEW_CAPACITY) -> list[dict]:
    """Record the outcome of every saved list whose day is labelled; return them, oldest first."""
    lists = sorted((share.output_dir / "lists").glob("*.json"))
    outcomes = [record_outcome(share, dt.date.fromisoformat(p.stem), capacity) for p in lists]
    return [o for o in outcomes if o is not None]


def recorded_outcomes(share: Share) -> list[dict]:
    """The outcomes on the share, oldest first."""
    folder = share.output_dir / "outcomes"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
