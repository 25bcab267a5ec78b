"""Simulated days in the shape of a bank's export: the worked example of your own data.

A bank rarely hands over the simulator's columns. This writes the same transactions the
way a card issuer's export typically looks, so the column mapping, text ids, UTC
timestamps, month files and late labels can be tried end to end:

- ``transactions/transactions-<YYYY-MM>.csv``, one file per month, columns
  ``tx_id,timestamp,card_id,merchant_id,amount``: text ids (``tx-0000000123``,
  ``card-000123``, ``m-000045``, zero-padded so that their text order is the order of
  the simulator's numbers), timestamps in UTC ISO-8601 with ``Z`` (the simulator's clock
  taken as UTC), no label;
- ``chargebacks/<YYYY-MM-DD>.csv``, the confirmed frauds reported on that date, a week
  after their transactions' day (``CHARGEBACK_DELAY_DAYS``), columns
  ``tx_id,is_fraud,reported_at``;
- ``fraudpipe-mapping.json``, the column mapping that reads the transaction files
  (the same as ``examples/bank_export/fraudpipe-mapping.json``).

``fraudpipe simulate --format bank-export`` writes it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from trainer.share.files import atomic_path, atomic_write_text

#: Chargebacks arrive this many days after their transactions' day (the handbook's delay).
CHARGEBACK_DELAY_DAYS = 7

#: The column mapping of the transaction files (``trainer.data.mapping``).
MAPPING = {
    "columns": {
        "transaction_id": "tx_id",
        "timestamp": "timestamp",
        "card": "card_id",
        "terminal": "merchant_id",
        "amount": "amount",
    },
    "timezone": "UTC",
}
TRANSACTION_COLUMNS = ["tx_id", "timestamp", "card_id", "merchant_id", "amount"]
CHARGEBACK_COLUMNS = ["tx_id", "is_fraud", "reported_at"]
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def tx_id(numbers: pd.Series) -> pd.Series:
    """The export's transaction ids of the simulator's TRANSACTION_IDs."""
    return "tx-" + numbers.astype("int64").astype(str).str.zfill(10)


def card_id(numbers: pd.Series) -> pd.Series:
    """The export's card ids of the simulator's CUSTOMER_IDs."""
    return "card-" + numbers.astype("int64").astype(str).str.zfill(6)


def merchant_id(numbers: pd.Series) -> pd.Series:
    """The export's merchant ids of the simulator's TERMINAL_IDs."""
    return "m-" + numbers.astype("int64").astype(str).str.zfill(6)


def transactions(day: pd.DataFrame) -> pd.DataFrame:
    """A simulated day (canonical columns) as the export's transaction rows."""
    return pd.DataFrame({
        "tx_id": tx_id(day["TRANSACTION_ID"]),
        "timestamp": day["TX_DATETIME"].dt.strftime(TIME_FORMAT),
        "card_id": card_id(day["CUSTOMER_ID"]),
        "merchant_id": merchant_id(day["TERMINAL_ID"]),
        "amount": day["TX_AMOUNT"].astype("float64"),
    })


def chargebacks(day: pd.DataFrame, reported: dt.date) -> pd.DataFrame:
    """The confirmed frauds of a simulated day, reported on `reported`."""
    frauds = day[day["TX_FRAUD"] == 1]
    return pd.DataFrame({
        "tx_id": tx_id(frauds["TRANSACTION_ID"]),
        "is_fraud": 1,
        "reported_at": f"{reported.isoformat()}T09:00:00Z",
    }, columns=CHARGEBACK_COLUMNS)


def write_bank_export(days: Iterable[tuple[dt.date, pd.DataFrame]], out: str | Path
                      ) -> dict[str, list[str]]:
    """Write simulated days as a bank export under `out`; returns the files by kind.

    Each month file is written when its last day has been seen (days come in order).
    """
    out = Path(out)
    written: dict[str, list[str]] = {"transactions": [], "chargebacks": []}
    month: list[pd.DataFrame] = []
    key: tuple[int, int] | None = None

    def flush() -> None:
        if month and key is not None:
            path = out / "transactions" / f"transactions-{key[0]:04d}-{key[1]:02d}.csv"
            _write_csv(pd.concat(month, ignore_index=True), path)
            written["transactions"].append(str(path))

    for day, frame in days:
        if key is not None and (day.year, day.month) != key:
            flush()
            month = []
        key = (day.year, day.month)
        month.append(transactions(frame))
        reported = day + dt.timedelta(days=CHARGEBACK_DELAY_DAYS)
        path = out / "chargebacks" / f"{reported.isoformat()}.csv"
        _write_csv(chargebacks(frame, reported), path)
        written["chargebacks"].append(str(path))
    flush()
    atomic_write_text(out / "fraudpipe-mapping.json", json.dumps(MAPPING, indent=2) + "\n")
    return written


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
