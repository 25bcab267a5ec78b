"""The transaction dataset's columns and the canonical on-share types.

Column names are those of the GKE sample and the fraud-detection handbook's simulator
(docs/facts.md#the-gke-sample). On the share every dataset is Parquet with exactly these types.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np

#: Canonical column -> numpy dtype of a validated dataset on the share.
COLUMNS: dict[str, np.dtype | str] = {
    "TRANSACTION_ID": "int64",
    "TX_DATETIME": "datetime64[ns]",
    "CUSTOMER_ID": "int64",
    "TERMINAL_ID": "int64",
    "TX_AMOUNT": "float64",
    "TX_TIME_SECONDS": "int64",
    "TX_TIME_DAYS": "int64",
    "TX_FRAUD": "int64",
    "TX_FRAUD_SCENARIO": "int64",
}

LABEL = "TX_FRAUD"

#: Dataset files are named after the day they hold.
DATE_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})$")


def parse_date(text: str) -> dt.date:
    """Parse an ISO date (YYYY-MM-DD), with an error that says what was expected."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date; expected YYYY-MM-DD") from exc


def date_from_name(name: str) -> dt.date | None:
    """The date a dataset file name stands for, e.g. 'x/2018-04-01.pkl' -> 2018-04-01."""
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    if not DATE_NAME.match(stem):
        return None
    try:
        return dt.date.fromisoformat(stem)
    except ValueError:
        return None
