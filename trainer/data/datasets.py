"""One dataset file: reading it (.parquet, .csv, opt-in .pkl) and validating it.

`read_dataset` turns a file into a raw DataFrame, `split_days` cuts it into days,
`validate_dataset` turns a raw frame (columns renamed by `trainer.data.mapping`; the
column conversions are `trainer.data.values`) into the canonical frame of
`trainer.data.schema` (exact columns and dtypes, sorted rows) or raises
`DatasetValidationError` with a message that names the file, the row or column, what was
found and what was expected. `load_training_day` reads a validated day back from the share.

Accepted input (docs/facts.md#the-gke-sample), once the columns carry the canonical names
(`trainer.data.mapping` renames a user's columns): TX_DATETIME as int64 nanoseconds, as
datetime64 of any unit, or as ISO-8601 text with a time (a date alone is refused, not taken
as midnight). Time-zone-aware values (a tz-aware column, or text ending in `Z` or an
offset such as `+02:00`) are converted to the storage zone (UTC unless configured) and
stored tz-naive; naive values and int64 nanoseconds are wall-clock time in that zone.
Ids (TRANSACTION_ID, CUSTOMER_ID, TERMINAL_ID) are integers, or text: a column holding
only numbers is int64 (the sample's `object` columns of Python ints included), one
holding any other text (letters, or digits with a leading zero such as `000123`) is kept
as text, exactly. Text is never taken for a number in the other columns: a typed file
with amounts stored as strings is a schema error, not something to guess about.
The simulator's columns TX_TIME_SECONDS, TX_TIME_DAYS and TX_FRAUD_SCENARIO are optional
and checked only when present; TX_FRAUD is optional (an unlabelled day), 0/1 or a
boolean. Extra columns are dropped (ingestion records their names) so that files carrying
derived columns, or a CSV's saved index, still ingest; a missing required column is an
error.

Rows in messages are counted from 0 in file order (the first data row of a CSV is row 0).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from trainer.data.schema import COLUMNS, ID_COLUMNS, LABEL, REQUIRED
from trainer.data.values import TEXT_ID_DTYPE, first_row, to_datetime, to_id, to_number
from trainer.errors import DatasetValidationError
from trainer.share.layout import Share

log = logging.getLogger(__name__)

READABLE_SUFFIXES = (".parquet", ".csv", ".pkl")
#: Integer columns that may not be negative (ids only when they are integers).
NON_NEGATIVE = (*ID_COLUMNS, "TX_TIME_SECONDS", "TX_TIME_DAYS")
FRAUD_SCENARIOS = {0, 1, 2, 3}
#: Canonical row order: deterministic output needs a total order, and ids are unique.
SORT_KEYS = ["TX_DATETIME", "TRANSACTION_ID"]


def read_dataset(path: str | Path, *, allow_pickle: bool = False,
                 text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read one dataset file into a raw (not yet validated) DataFrame, rows numbered 0..n-1.

    Args:
        path: a `.parquet`, `.csv` or `.pkl` file.
        allow_pickle: read `.pkl` files. Loading a pickle can execute arbitrary code, so
            this is the one opt-in exception, for the GKE sample's pickled inputs.
        text_columns: CSV columns to read as text (the id columns: `000123` keeps its
            zeros; `validate_dataset` makes ids that are all numbers int64).

    Raises:
        DatasetValidationError: unsupported suffix, empty or unreadable file, a pickle
            without `allow_pickle`, or a pickle that does not hold a DataFrame.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READABLE_SUFFIXES:
        raise DatasetValidationError(
            f"{path.name}: unsupported file type {suffix or '(none)'!r}, "
            f"expected one of {', '.join(READABLE_SUFFIXES)}"
        )
    if suffix == ".pkl" and not allow_pickle:
        raise DatasetValidationError(
            f"{path.name}: pickle files can execute code when loaded and are refused; "
            "expected .parquet or .csv, or pass --allow-pickle for trusted sample data"
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DatasetValidationError(f"{path.name}: cannot be read ({exc})") from exc
    if size == 0:
        raise DatasetValidationError(f"{path.name}: file is empty (0 bytes), expected a dataset")
    try:
        if suffix == ".parquet":
            frame = pq.read_table(path).to_pandas()
        elif suffix == ".csv":
            header = pd.read_csv(path, nrows=0).columns
            frame = pd.read_csv(path, dtype={c: str for c in text_columns if c in header})
        else:
            frame = pd.read_pickle(path)  # allow_pickle: opt-in, checked above
    except Exception as exc:  # any parser failure means "not a readable dataset"
        kind = {".parquet": "Parquet", ".csv": "CSV", ".pkl": "pickle"}[suffix]
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetValidationError(
            f"{path.name}: not a readable {kind} file ({type(exc).__name__}: {detail})"
        ) from exc
    if not isinstance(frame, pd.DataFrame):
        raise DatasetValidationError(
            f"{path.name}: holds a {type(frame).__name__}, expected a pandas DataFrame"
        )
    return frame.reset_index(drop=True)


def validate_dataset(
    df: pd.DataFrame, name: str, expected_date: dt.date | None, *,
    timezone: str = "UTC", rows: np.ndarray | pd.Index | None = None,
) -> pd.DataFrame:
    """Check a frame with canonical column names and return it in canonical form.

    Args:
        df: the raw frame (`read_dataset`), its columns renamed (`trainer.data.mapping`).
        name: the file name, used in every message.
        expected_date: the day every row must fall on; None accepts any single day
            (a testing file whose name is not a date).
        timezone: the storage zone: tz-aware datetimes are converted to it.
        rows: the file row number of each row of `df`, for messages (default 0..n-1; a
            day split from a longer file passes its rows' numbers in the file).

    Returns:
        A new frame with the canonical columns present (`trainer.data.schema`), in
        canonical order and dtypes (ids int64 or text), rows sorted by TX_DATETIME then
        TRANSACTION_ID, index 0..n-1.

    Raises:
        DatasetValidationError: the first problem found, naming file, row or column.
    """
    if df.columns.duplicated().any():
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise DatasetValidationError(f"{name}: duplicate column(s) {', '.join(dup)}")
    missing = [column for column in REQUIRED if column not in df.columns]
    if missing:
        raise DatasetValidationError(
            f"{name}: missing column(s) {', '.join(missing)}; expected all of "
            f"{', '.join(REQUIRED)}" + separator_hint(df)
        )
    if len(df) == 0:
        raise DatasetValidationError(f"{name}: has no rows, expected at least one transaction")
    present = [c for c in COLUMNS if c in df.columns
               and (c != "TX_FRAUD_SCENARIO" or LABEL in df.columns)]
    extra = [str(c) for c in df.columns if c not in present]
    if extra:
        log.info("%s: dropping extra column(s) %s", name, ", ".join(extra))
    raw = df.reset_index(drop=True)
    file_rows = np.arange(len(raw)) if rows is None else np.asarray(rows)

    def where(row: int | None) -> str:
        """Message prefix naming the row (None: the whole column)."""
        if row is None:
            return f"{name}: column"
        return (f"{name}: row {file_rows[row]} "
                f"(TRANSACTION_ID {raw['TRANSACTION_ID'].iloc[row]!s})")

    out = pd.DataFrame(index=raw.index)
    for column in present:
        if column == "TX_DATETIME":
            out[column] = to_datetime(raw[column], where, timezone)
        elif column in ID_COLUMNS:
            out[column] = to_id(raw[column], column, where)
        elif column == LABEL and pd.api.types.is_bool_dtype(raw[column]):
            out[column] = raw[column].astype("int64")  # True/False labels: 1/0
        else:
            out[column] = to_number(raw[column], column, where,
                                     integer=str(COLUMNS[column]) == "int64")
    _check_values(out, where, file_rows)
    _check_day(out, where, name, expected_date)
    out = out.sort_values(SORT_KEYS, kind="mergesort").reset_index(drop=True)
    return out.astype({c: _canonical_dtype(c, out[c]) for c in present})


def _canonical_dtype(column: str, values: pd.Series):
    if column in ID_COLUMNS and not pd.api.types.is_integer_dtype(values):
        return TEXT_ID_DTYPE
    return COLUMNS[column]


def split_days(frame: pd.DataFrame, name: str, name_date: dt.date | None, timezone: str
               ) -> list[tuple[dt.date | None, pd.DataFrame]]:
    """The rows of each day of `frame` (canonical names), TX_DATETIME converted to the zone.

    A file named after a date is that one day (`validate_dataset` checks every row is on
    it); any other file is cut into the days its rows fall on, in `timezone`. A frame
    without rows, times or ids is one day None, for `validate_dataset` to refuse.

    Raises:
        DatasetValidationError: a timestamp cannot be read (the whole file is refused: its
            row belongs to no known day).
    """
    if "TX_DATETIME" not in frame.columns or "TRANSACTION_ID" not in frame.columns or (
            len(frame) == 0):
        return [(name_date, frame)]  # validate_dataset names what is missing
    frame = frame.copy()

    def where(row: int | None) -> str:
        if row is None:
            return f"{name}: column"
        return f"{name}: row {row} (TRANSACTION_ID {frame['TRANSACTION_ID'].iloc[row]!s})"

    frame["TX_DATETIME"] = to_datetime(frame["TX_DATETIME"], where, timezone)
    if name_date is not None:
        return [(name_date, frame)]
    days = frame["TX_DATETIME"].dt.normalize()
    return [(day.date(), frame[days == day]) for day in sorted(days.unique())]


def separator_hint(df: pd.DataFrame) -> str:
    """A hint when a CSV was split on the wrong separator (one column holding them all)."""
    if len(df.columns) != 1:
        return ""
    header = str(df.columns[0])
    for separator, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if header.count(separator) >= 2:
            return (f". The header is one column {header[:60]!r}: the file seems to use "
                    f"{label} as separator; fraudpipe reads comma-separated CSV (re-export "
                    "it with ',')")
    return ""


def _check_values(frame: pd.DataFrame, where, file_rows: np.ndarray) -> None:
    """Value ranges and uniqueness of the columns present, in canonical dtypes."""
    checks = [("TX_AMOUNT", frame["TX_AMOUNT"] < 0, "expected >= 0")]
    if LABEL in frame:
        checks.append((LABEL, ~frame[LABEL].isin([0, 1]), "expected 0 or 1"))
    if "TX_FRAUD_SCENARIO" in frame:
        checks.append(("TX_FRAUD_SCENARIO", ~frame["TX_FRAUD_SCENARIO"].isin(FRAUD_SCENARIOS),
                       "expected one of 0, 1, 2, 3"))
    checks += [(column, frame[column] < 0, "expected >= 0") for column in NON_NEGATIVE
               if column in frame and pd.api.types.is_integer_dtype(frame[column])]
    for column, bad, expected in checks:
        if bad.any():
            row = first_row(bad)
            raise DatasetValidationError(
                f"{where(row)}: {column} is {frame[column].iloc[row]}, {expected}"
            )
    # The simulator labels a transaction fraud exactly when a scenario applies
    # (docs/facts.md#simulated-transactions).
    if LABEL in frame and "TX_FRAUD_SCENARIO" in frame:
        inconsistent = (frame[LABEL] == 1) != (frame["TX_FRAUD_SCENARIO"] > 0)
        if inconsistent.any():
            row = first_row(inconsistent)
            raise DatasetValidationError(
                f"{where(row)}: TX_FRAUD is {frame['TX_FRAUD'].iloc[row]} but TX_FRAUD_SCENARIO "
                f"is {frame['TX_FRAUD_SCENARIO'].iloc[row]}, expected TX_FRAUD 1 exactly when "
                "the scenario is 1, 2 or 3"
            )
    duplicated = frame["TRANSACTION_ID"].duplicated()
    if duplicated.any():
        row = first_row(duplicated)
        first = first_row(frame["TRANSACTION_ID"] == frame["TRANSACTION_ID"].iloc[row])
        raise DatasetValidationError(
            f"{where(row)}: duplicate TRANSACTION_ID (first at row {file_rows[first]}), "
            f"expected unique ids ({int(duplicated.sum())} duplicate row(s))"
        )


def _check_day(frame: pd.DataFrame, where, name: str, expected_date: dt.date | None) -> None:
    days = frame["TX_DATETIME"].dt.normalize()
    if expected_date is None:
        expected = days.iloc[0]
        source = f"the day of row 0 ({expected.date()}); a file must hold one day"
    else:
        expected = pd.Timestamp(expected_date)
        source = f"{expected_date.isoformat()}, the date in the file name"
    off = days != expected
    if off.any():
        row = first_row(off)
        raise DatasetValidationError(
            f"{where(row)}: TX_DATETIME {frame['TX_DATETIME'].iloc[row]} is on "
            f"{days.iloc[row].date()}, expected {source} ({int(off.sum())} row(s) off)"
        )


def dataset_day(frame: pd.DataFrame) -> dt.date:
    """The day of a validated (single-day) frame."""
    return frame["TX_DATETIME"].iloc[0].date()


def load_canonical(path: Path) -> pd.DataFrame:
    """Read a validated Parquet file from the share, checking its columns and dtypes.

    Raises:
        DatasetValidationError: the file is missing, unreadable or not canonical.
    """
    if not path.is_file():
        raise DatasetValidationError(
            f"{path}: no such dataset; ingest the day first (fraudpipe ingest --source ...)"
        )
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as exc:
        raise DatasetValidationError(f"{path}: unreadable Parquet ({exc})") from exc
    found = {column: str(dtype) for column, dtype in frame.dtypes.items()}
    expected = {column: str(COLUMNS[column]) for column in frame.columns if column in COLUMNS}
    for column in ID_COLUMNS:
        if column in frame and pd.api.types.is_string_dtype(frame[column]):
            expected[column] = found[column]
    ordered = [c for c in COLUMNS if c in frame.columns]
    if found != expected or list(frame.columns) != ordered or any(
            c not in frame.columns for c in REQUIRED):
        raise DatasetValidationError(
            f"{path}: columns/dtypes are {found}, expected the canonical {expected} "
            f"with at least {', '.join(REQUIRED)}, in the order of {', '.join(COLUMNS)}"
        )
    return frame


def load_training_day(share: Share, day: dt.date) -> pd.DataFrame:
    """The canonical frame of one ingested training day."""
    return load_canonical(share.training_dataset(day))

