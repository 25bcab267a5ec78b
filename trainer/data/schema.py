"""The transaction dataset's columns and the canonical on-share types.

Column names are those of the GKE sample and the fraud-detection handbook's simulator
(docs/facts.md#the-gke-sample); users' own column names map onto them
(`trainer.data.mapping`). On the share every dataset is Parquet with these columns, in
this order: the `REQUIRED` ones, TX_FRAUD when the day is labelled, and the
`SIMULATOR_ONLY` ones that the input had. The id columns (`ID_COLUMNS`) are int64, or
text when the user's ids are text; the other columns have exactly the types below.
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

#: Columns every dataset has (a labelled one also has LABEL).
REQUIRED: tuple[str, ...] = (
    "TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT",
)
#: Columns only the simulator knows: kept when present, never required.
SIMULATOR_ONLY: tuple[str, ...] = ("TX_TIME_SECONDS", "TX_TIME_DAYS", "TX_FRAUD_SCENARIO")
#: Identifier columns: int64, or text (the user's own ids, kept as they are).
ID_COLUMNS: tuple[str, ...] = ("TRANSACTION_ID", "CUSTOMER_ID", "TERMINAL_ID")

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
