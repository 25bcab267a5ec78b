"""Request bodies in the share's mapped columns -> canonical transactions, or a clear 4xx.

A transaction is sent in the columns the share's files use (`trainer.data.mapping`: the
user's names for transaction_id, timestamp, card, terminal, amount), and converted by the
ingest's own validation (`trainer.data.datasets.validate_dataset`), so a value is read
online exactly as it is read from a file: ids that are numbers become int64, other text
stays text, aware times are converted to the share's zone, amounts must be finite and
>= 0. Errors name the user's field, its role and what was expected.

Batch bodies: JSON lines (``application/x-ndjson``, one object a line), an Arrow IPC
stream (``application/vnd.apache.arrow.stream``) or Parquet
(``application/vnd.apache.parquet``), each with the same columns.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from trainer.data.datasets import validate_dataset
from trainer.data.mapping import ROLES, ColumnMapping
from trainer.errors import DatasetValidationError

#: A transaction as recorded: (transaction id, TX_DATETIME ns, card, terminal, amount).
Row = tuple[Any, int, Any, Any, float]
#: Canonical columns of a served transaction (no label: it is not known yet).
SERVED_COLUMNS = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]
JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
ARROW_STREAM = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


class RequestError(Exception):
    """A request that cannot be scored; nothing was recorded for it."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def to_json(self) -> dict:
        """The error body: the message and, when one is to blame, the field."""
        return {"error": self.message, "field": self.field}


@dataclass(frozen=True)
class IdKinds:
    """Whether the share stores each id column as integers or as text (None: unknown)."""

    kinds: dict[str, str | None]

    def coerce(self, frame: pd.DataFrame, mapping: ColumnMapping) -> pd.DataFrame:
        """`frame`'s id columns in the share's type: text ids stay text on a text share."""
        out = frame
        for column, kind in self.kinds.items():
            values = frame[column]
            numeric = pd.api.types.is_integer_dtype(values)
            if kind == "text" and numeric:
                out = out.assign(**{column: values.astype(str).astype(object)})
            elif kind == "int" and not numeric:
                role = _role_of(column)
                raise RequestError(
                    422, f"field {mapping.columns[role]!r} (role {role}) is "
                         f"{values.iloc[0]!r}; expected an integer id, as the share stores "
                         f"its {column}", mapping.columns[role])
        return out


def id_key(transaction_id: object) -> str:
    """A transaction id as the text that keys its answer (ints and text alike)."""
    return str(transaction_id).strip()


def _role_of(column: str) -> str:
    return next(role for role, canonical in ROLES.items() if canonical == column)


def _field_named(message: str, mapping: ColumnMapping) -> str | None:
    """The user's field a validation message is about (the first canonical name in it).

    The prefix naming the row by its transaction id is not about that field.
    """
    message = re.sub(r"\(TRANSACTION_ID [^)]*\)", "", message)
    found = [(message.find(column), role) for role, column in ROLES.items()
             if column in message]
    if not found:
        return None
    return mapping.columns[min(found)[1]]


def _validated(raw: pd.DataFrame, mapping: ColumnMapping, what: str) -> pd.DataFrame:
    try:
        mapped = mapping.apply(raw, what)
        frame = validate_dataset(mapped.frame.drop(columns=["TX_FRAUD"], errors="ignore"),
                                 what, None, timezone=mapping.timezone)
    except DatasetValidationError as exc:
        field = _field_named(str(exc), mapping)
        message = str(exc) + (f" [field {field!r}]" if field else "")
        raise RequestError(422, message, field) from exc
    return frame[SERVED_COLUMNS]


def parse_one(body: bytes, mapping: ColumnMapping, kinds: IdKinds) -> Row:
    """One JSON object -> its canonical row.

    A well-formed object takes a direct path (`fast_row`); anything else goes through
    the ingest's validation, which either converts it the same way or names the problem.
    """
    document = _json_document(body, "request body")
    if not isinstance(document, dict):
        raise RequestError(400, f"request body is a JSON {type(document).__name__}; expected "
                                f"one object with the fields {_fields(mapping)}")
    row = fast_row(document, mapping, kinds)
    if row is not None:
        return row
    frame = kinds.coerce(_validated(_frame_of([document], mapping), mapping, "request"),
                         mapping)
    return frame_row(frame, 0)


#: ISO-8601 text the direct path converts (anything else: the ingest's parser decides).
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?"
                       r"(?:[Zz]|[+-]\d{2}:?\d{2})?")


def _json_document(text: bytes, what: str) -> Any:
    """Parsed JSON; NaN, Infinity and overflowing numbers are read (to be refused by field)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        try:  # Python's parser takes NaN/Infinity/1e999: the field check then names them
            return json.loads(text)
        except ValueError:
            raise RequestError(400, f"{what} is not valid JSON: {exc}") from exc


def fast_row(document: dict, mapping: ColumnMapping, kinds: IdKinds) -> Row | None:
    """The row of an object whose values need no judgement, else None.

    Equal to what ``validate_dataset`` makes of the same values (a test compares them):
    text ids kept as given, integer ids as ints, ISO-8601 times converted to the share's
    zone, finite amounts >= 0.
    """
    values = []
    for role, column in (("transaction_id", "TRANSACTION_ID"), ("card", "CUSTOMER_ID"),
                         ("terminal", "TERMINAL_ID")):
        value = document.get(mapping.columns[role])
        kind = kinds.kinds.get(column)
        if isinstance(value, bool) or value is None or value == "":
            return None
        if isinstance(value, int):
            values.append(str(value) if kind == "text" else value)
        elif isinstance(value, str) and kind == "text":
            values.append(value)
        else:
            return None
    stamp = document.get(mapping.columns["timestamp"])
    if not isinstance(stamp, str) or not _ISO_TIME.fullmatch(stamp):
        return None
    when = pd.Timestamp(stamp)
    if when.tz is not None:
        when = when.tz_convert(mapping.timezone).tz_localize(None)
    amount = document.get(mapping.columns["amount"])
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not (
            math.isfinite(amount) and amount >= 0):
        return None
    return values[0], int(when.as_unit("ns").value), values[1], values[2], float(amount)


def frame_row(frame: pd.DataFrame, i: int) -> Row:
    """Row `i` of a canonical frame as a `Row`."""
    return (plain(frame["TRANSACTION_ID"].iloc[i]),
            int(frame["TX_DATETIME"].iloc[i].value),
            plain(frame["CUSTOMER_ID"].iloc[i]), plain(frame["TERMINAL_ID"].iloc[i]),
            float(frame["TX_AMOUNT"].iloc[i]))


def plain(value: Any) -> Any:
    """A numpy scalar as a Python int or str and strs (JSON, Redis and dict keys)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.str_):
        return str(value)
    return value


def _fields(mapping: ColumnMapping) -> str:
    return ", ".join(mapping.columns[role] for role in ROLES if role != "label")


def _frame_of(documents: list[dict], mapping: ColumnMapping) -> pd.DataFrame:
    """Objects -> a raw frame, each value checked for a JSON type the role can hold."""
    for row, document in enumerate(documents):
        amount = document.get(mapping.columns["amount"])
        if amount is not None and (isinstance(amount, bool)
                                   or not isinstance(amount, int | float)):
            name = mapping.columns["amount"]
            raise RequestError(422, f"request row {row}: field {name!r} (role amount) is "
                                    f"{amount!r}; expected a number >= 0", name)
        for role in ("transaction_id", "card", "terminal"):
            value = document.get(mapping.columns[role])
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | str)):
                name = mapping.columns[role]
                raise RequestError(422, f"request row {row}: field {name!r} (role {role}) is "
                                        f"{value!r}; expected an id (an integer or text)", name)
        stamp = document.get(mapping.columns["timestamp"])
        if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int | str)):
            name = mapping.columns["timestamp"]
            raise RequestError(422, f"request row {row}: field {name!r} (role timestamp) is "
                                    f"{stamp!r}; expected ISO-8601 text or int64 nanoseconds",
                               name)
    frame = pd.DataFrame(documents)
    for role in ("transaction_id", "card", "terminal", "timestamp"):
        name = mapping.columns[role]
        if name in frame and frame[name].map(type).nunique() == 1 and isinstance(
                frame[name].iloc[0], str):
            frame[name] = frame[name].astype(object)
    return frame


def parse_batch(body: bytes, content_type: str, mapping: ColumnMapping,
                kinds: IdKinds) -> tuple[pd.DataFrame, list[str]]:
    """A batch body -> canonical rows (in (time, id) order) and each request row's id key.

    The key of a row is its transaction id as text (``id_key`` of the canonical id).
    """
    kind = content_type.split(";")[0].strip().lower()
    if kind in JSON_LINES:
        documents = []
        for number, line in enumerate(body.splitlines()):
            if not line.strip():
                continue
            document = _json_document(line, f"request line {number + 1}")
            if not isinstance(document, dict):
                raise RequestError(400, f"request line {number + 1} is a JSON "
                                        f"{type(document).__name__}; expected an object")
            documents.append(document)
        raw = _frame_of(documents, mapping)
    elif kind in (ARROW_STREAM, PARQUET):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = (pa.ipc.open_stream(body).read_all() if kind == ARROW_STREAM
                     else pq.read_table(io.BytesIO(body)))
        except (pa.ArrowException, OSError) as exc:
            raise RequestError(400, f"request body is not readable as {kind}: {exc}") from exc
        raw = table.to_pandas()
    else:
        raise RequestError(415, f"Content-Type {content_type or 'missing'}; expected one of "
                                f"{', '.join((*JSON_LINES[:1], ARROW_STREAM, PARQUET))}")
    if not len(raw):
        raise RequestError(422, "request body holds no transaction; expected at least one")
    id_field = mapping.columns["transaction_id"]
    if id_field not in raw:
        _validated(raw, mapping, "request")  # names the missing field
    raw = raw.reset_index(drop=True)
    keys = raw[id_field].astype(str).str.strip()
    # Repeats of an id in the body are answered with its first row's answer: only the
    # first is validated and recorded.
    first = ~keys.duplicated().to_numpy()
    frame = kinds.coerce(_validated(raw[first], mapping, "request"), mapping)
    return frame, keys.tolist()
