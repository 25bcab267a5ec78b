"""Converting one raw column to its canonical type: numbers, ids and times.

`trainer.data.datasets` validates a whole frame with these; each names the file and row
of the first bad value through the `where` callable it is given (row -> message prefix,
None -> "<file>: column"). The rules (ids that are numbers become int64, other text stays
text; aware times are converted to the storage zone) are described in
`trainer.data.datasets`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainer.errors import DatasetValidationError

#: The dtype of an id column holding text (pandas' default string dtype).
TEXT_ID_DTYPE = pd.StringDtype(na_value=np.nan)
#: Integer times below this (1970-01-12 as nanoseconds) are seconds or milliseconds.
EARLIEST_NANOSECONDS = 10**15
#: Text that is a number ("12", "-3", "12.0", "1e3"), and an integer with a leading zero.
_NUMBER = r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*"
_LEADING_ZERO = r"\s*0\d+\s*"
#: Text with a time-zone designator at its end: "Z", "+02:00", "-0500", "+01".
_TZ_SUFFIX = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$"


def first_row(mask: np.ndarray | pd.Series) -> int:
    """The position of the first True of a boolean mask (callers know there is one)."""
    return int(np.flatnonzero(np.asarray(mask))[0])


def to_number(series: pd.Series, column: str, where, *, integer: bool) -> pd.Series:
    """Convert one numeric column losslessly to int64 or float64, naming the bad row."""
    expected = "an integer (int64)" if integer else "a number (float64)"
    if pd.api.types.is_string_dtype(series) and series.dtype != object:
        # Text where a number belongs: name the first row that is not even numeric text.
        unparsable = pd.to_numeric(series, errors="coerce").isna() & series.notna()
        row = first_row(unparsable) if unparsable.any() else 0
        raise DatasetValidationError(
            f"{where(row)}: {column} is {series.iloc[row]!r} (text, column dtype {series.dtype}), "
            f"expected {expected}"
        )
    if pd.api.types.is_bool_dtype(series) or not (
        pd.api.types.is_numeric_dtype(series) or series.dtype == object
    ):
        raise DatasetValidationError(
            f"{where(None)} {column} has dtype {series.dtype}, expected {expected}"
        )
    if series.dtype == object:  # the sample's id columns: Python ints in an object column
        is_number = series.map(
            lambda v: (
                isinstance(v, (int, float, np.integer, np.floating))
                and not isinstance(v, (bool, np.bool_))
            )
        )
        if not is_number.all():
            row = first_row(~is_number)
            value = series.iloc[row]
            raise DatasetValidationError(
                f"{where(row)}: {column} is {value!r} ({type(value).__name__}), expected {expected}"
            )
        series = pd.to_numeric(series)
    if isinstance(series.dtype, pd.api.extensions.ExtensionDtype):  # nullable Int64 & co.
        numpy_dtype = "float64" if series.hasnans else series.dtype.numpy_dtype
        series = series.astype(numpy_dtype)
    values = series.to_numpy()
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            row = first_row(bad)
            raise DatasetValidationError(
                f"{where(row)}: {column} is {values[row]}, expected {expected}, not NaN or inf"
            )
        if integer:
            fractional = values != np.floor(values)
            if fractional.any():
                row = first_row(fractional)
                raise DatasetValidationError(
                    f"{where(row)}: {column} is {values[row]}, expected {expected}"
                )
    if integer and values.dtype.kind == "u" and (values > np.iinfo(np.int64).max).any():
        row = first_row(values > np.iinfo(np.int64).max)
        raise DatasetValidationError(
            f"{where(row)}: {column} is {values[row]}, too large for int64"
        )
    return pd.Series(values.astype("int64" if integer else "float64"), index=series.index)


def to_id(series: pd.Series, column: str, where) -> pd.Series:
    """An id column: int64 when it holds only numbers, else the text exactly as given."""
    if series.dtype == object:
        is_text = series.map(lambda v: isinstance(v, str)).to_numpy()
        if is_text.any() and not is_text.all():
            row = first_row(is_text != is_text[0])
            value = series.iloc[row]
            kind = "text" if is_text[0] else "an integer"
            raise DatasetValidationError(
                f"{where(row)}: {column} is {value!r} ({type(value).__name__}), expected "
                f"{'an integer' if not is_text[0] else 'text'} like row 0 (the column mixes "
                f"integers and text; row 0 holds {kind})"
            )
        if not is_text.any():
            return to_number(series, column, where, integer=True)
    elif not pd.api.types.is_string_dtype(series):
        return to_number(series, column, where, integer=True)
    text = series.astype(TEXT_ID_DTYPE)  # Arrow-backed: the checks below are vectorised
    missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
    if missing.any():
        row = first_row(missing)
        raise DatasetValidationError(
            f"{where(row)}: {column} is missing, expected an id (an integer or text)")
    if text.str.fullmatch(_NUMBER).all() and not text.str.fullmatch(_LEADING_ZERO).any():
        return to_number(pd.to_numeric(text.str.strip()), column, where, integer=True)
    return text


def to_datetime(series: pd.Series, where, timezone: str = "UTC") -> pd.Series:
    """TX_DATETIME from int64 ns, datetime64 (any unit, naive or aware) or ISO text.

    Aware values are converted to `timezone` and made naive; naive ones are kept as they
    are (wall-clock time in `timezone`).
    """
    column = "TX_DATETIME"
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        converted = series.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[ns]")
    elif pd.api.types.is_datetime64_dtype(series):
        converted = series.astype("datetime64[ns]")
    elif (
        pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    ) or _holds_only_ints(series):
        nanoseconds = to_number(series, column, where, integer=True)
        early = (nanoseconds < EARLIEST_NANOSECONDS).to_numpy()
        if early.any():  # seconds or milliseconds taken for nanoseconds: a 1970 date
            row = first_row(early)
            raise DatasetValidationError(
                f"{where(row)}: {column} is {nanoseconds.iloc[row]}, which as nanoseconds "
                f"is {pd.Timestamp(int(nanoseconds.iloc[row]), unit='ns')}; expected int64 "
                "nanoseconds since 1970 (seconds or milliseconds? convert them, or give "
                "ISO-8601 text)")
        converted = pd.to_datetime(nanoseconds, unit="ns")
    elif pd.api.types.is_string_dtype(series) or series.dtype == object:
        converted = _text_to_datetime(series, where, timezone)
    else:
        raise DatasetValidationError(
            f"{where(None)} {column} has dtype {series.dtype}, "
            "expected int64 nanoseconds, datetime64 or ISO-8601 text"
        )
    if converted.isna().any():
        row = first_row(converted.isna())
        raise DatasetValidationError(f"{where(row)}: {column} is missing, expected a datetime")
    return converted


def _text_to_datetime(series: pd.Series, where, timezone: str) -> pd.Series:
    """ISO-8601 text (or Python datetimes) to naive datetime64[ns] in `timezone`."""
    column = "TX_DATETIME"
    text = series.astype(TEXT_ID_DTYPE)
    date_only = text.str.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*")
    if date_only.any():  # midnight would be a guess, and it changes every time feature
        row = first_row(date_only)
        raise DatasetValidationError(
            f"{where(row)}: {column} is {series.iloc[row]!r}, a date without a time; "
            "expected a date and time (e.g. 2018-04-01 07:19:05), int64 nanoseconds or "
            "a datetime"
        )
    aware = (text.str.contains(_TZ_SUFFIX, regex=True) & series.notna()).to_numpy(dtype=bool)
    if aware.any() and not aware[series.notna().to_numpy()].all():
        row = first_row(aware != aware[0])
        has = "has a time zone" if aware[row] else "has no time zone"
        raise DatasetValidationError(
            f"{where(row)}: {column} is {series.iloc[row]!r}, which {has} unlike row 0 "
            f"({series.iloc[0]!r}); expected every value with a time zone (Z or an offset) "
            "or none"
        )
    converted = pd.to_datetime(series, format="ISO8601", errors="coerce", utc=bool(aware.any()))
    unparsed = converted.isna() & series.notna()
    if unparsed.any():
        row = first_row(unparsed)
        raise DatasetValidationError(
            f"{where(row)}: {column} is {series.iloc[row]!r}, "
            "expected int64 nanoseconds, a datetime or ISO-8601 text"
        )
    if isinstance(converted.dtype, pd.DatetimeTZDtype):
        converted = converted.dt.tz_convert(timezone).dt.tz_localize(None)
    return converted.astype("datetime64[ns]")


def _holds_only_ints(series: pd.Series) -> bool:
    """An object column of Python/numpy ints, as the sample stores its id columns."""
    return series.dtype == object and bool(
        series.map(lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)).all()
    )
