"""The column mapping: which of a user's columns plays each of fraudpipe's roles.

A user describes their files once, in ``<share>/fraudpipe-mapping.json`` (or a file given
to ``fraudpipe ingest --mapping``), and may override single roles on the command line
(``--map card=card_id``)::

    {"columns": {"transaction_id": "tx_id", "timestamp": "timestamp", "card": "card_id",
                 "terminal": "merchant_id", "amount": "amount", "label": "is_fraud"},
     "timezone": "UTC"}

Roles and the canonical column each becomes (``trainer.data.schema``): transaction_id ->
TRANSACTION_ID, timestamp -> TX_DATETIME, card -> CUSTOMER_ID, terminal -> TERMINAL_ID,
amount -> TX_AMOUNT, label -> TX_FRAUD. A role left out keeps the canonical name, so the
default mapping is the identity on the simulator's columns. Every role but ``label`` is
required: a file without one of them is refused, naming the role and the columns found.
A file without its label column is an unlabelled ("arrived") day.

The simulator's own columns (TX_TIME_SECONDS, TX_TIME_DAYS, TX_FRAUD_SCENARIO) are kept
under their names when present (the scenario only with a label). Every other column is
dropped, and the ingest manifest lists what was dropped.

``timezone`` (an IANA name, default UTC) is the zone TX_DATETIME is stored in: time-zone
aware values are converted to it, naive values (and int64 nanoseconds) are taken as wall
clock time in it, and a day runs from midnight to midnight there.
"""

from __future__ import annotations

import json
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from trainer.data.datasets import separator_hint
from trainer.data.roles import MAPPING_FILE_NAME, REQUIRED_ROLES, ROLES
from trainer.data.schema import COLUMNS, SIMULATOR_ONLY
from trainer.errors import DatasetValidationError, PermanentError
from trainer.share.layout import Share

DEFAULT_TIMEZONE = "UTC"


class MappingError(PermanentError):
    """A mapping file or `--map` option that cannot be used (unknown role, bad zone).

    Exit code 2, like a mistyped argument; permanent, so never retried.
    """

    exit_code = 2


@dataclass(frozen=True)
class MappedFrame:
    """A raw frame with its columns renamed to the canonical names."""

    frame: pd.DataFrame
    """The canonical columns present, in ``COLUMNS`` order; index as in the raw frame."""
    dropped: list[str]
    """The file's columns that no role or simulator column took."""
    labelled: bool
    """True when the label column was in the file."""


@dataclass(frozen=True)
class ColumnMapping:
    """Role -> the user's column name, the storage time zone, and where they came from."""

    columns: dict[str, str] = field(default_factory=lambda: dict(ROLES))
    """Every role -> the column of the user's files that holds it."""
    timezone: str = DEFAULT_TIMEZONE
    """The IANA zone TX_DATETIME is stored in (tz-naive) and days are cut in."""
    origin: str = "default"
    """Where the mapping came from: "default", a file path, plus "--map"/"--timezone"."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(ROLES))
        if unknown:
            raise MappingError(
                f"{self.origin}: unknown role(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(ROLES)}")
        full = {**ROLES, **self.columns}
        object.__setattr__(self, "columns", {role: full[role] for role in ROLES})
        taken: dict[str, str] = {}
        for role, column in self.columns.items():
            if not isinstance(column, str) or not column:
                raise MappingError(f"{self.origin}: role {role} maps to {column!r}, "
                                   "expected a column name")
            if column in taken:
                raise MappingError(f"{self.origin}: column {column!r} is mapped to two roles, "
                                   f"{taken[column]} and {role}; expected one column per role")
            taken[column] = role
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise MappingError(f"{self.origin}: time zone {self.timezone!r} is unknown; "
                               "expected an IANA name such as UTC or Europe/Paris") from exc

    @classmethod
    def load(cls, path: str | Path) -> ColumnMapping:
        """Read a mapping file (JSON: ``{"columns": {role: column}, "timezone": zone}``)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise MappingError(f"{path}: no such mapping file") from exc
        except (OSError, ValueError) as exc:
            raise MappingError(f"{path}: unreadable mapping file ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("columns", {}), dict):
            raise MappingError(f'{path}: expected a JSON object {{"columns": {{role: column}}, '
                               '"timezone": zone}')
        extra = sorted(set(data) - {"columns", "timezone"})
        if extra:
            raise MappingError(f"{path}: unknown key(s) {', '.join(extra)}; expected columns "
                               "and timezone")
        return cls(columns=dict(data.get("columns", {})),
                   timezone=data.get("timezone", DEFAULT_TIMEZONE), origin=str(path.resolve()))

    def override(self, pairs: list[str] | None = None, timezone: str | None = None
                 ) -> ColumnMapping:
        """This mapping with ``role=column`` pairs and a time zone given on the command line."""
        if not pairs and timezone is None:
            return self
        columns = dict(self.columns)
        for pair in pairs or []:
            role, sep, column = pair.partition("=")
            if not sep or not column:
                raise MappingError(f"--map {pair!r}: expected ROLE=COLUMN, e.g. card=card_id")
            columns[role.strip()] = column.strip()
        origin = self.origin + (" + --map" if pairs else "") + (
            " + --timezone" if timezone is not None else "")
        return ColumnMapping(columns=columns, timezone=timezone or self.timezone, origin=origin)

    def to_json(self) -> dict:
        """The record of the ingest manifest: columns, timezone and origin."""
        return {"columns": dict(self.columns), "timezone": self.timezone, "from": self.origin}

    def apply(self, raw: pd.DataFrame, name: str) -> MappedFrame:
        """Rename the mapped columns of `raw` to the canonical names; drop the others.

        Raises:
            DatasetValidationError: duplicate column names, or a required role's column is
                missing (the message names the role, the column and the columns found).
        """
        if raw.columns.duplicated().any():
            dup = sorted({str(c) for c in raw.columns[raw.columns.duplicated()]})
            raise DatasetValidationError(f"{name}: duplicate column(s) {', '.join(dup)}")
        missing = [role for role in REQUIRED_ROLES if self.columns[role] not in raw.columns]
        if missing:
            raise DatasetValidationError(self._missing_message(raw, name, missing))
        labelled = self.columns["label"] in raw.columns
        rename = {self.columns[role]: ROLES[role] for role in ROLES
                  if self.columns[role] in raw.columns}
        mapped_sources = set(rename)
        for column in SIMULATOR_ONLY:
            if column in raw.columns and column not in mapped_sources and column not in (
                    rename.values()) and (labelled or column != "TX_FRAUD_SCENARIO"):
                rename[column] = column
        frame = raw[list(rename)].rename(columns=rename)
        frame = frame[[c for c in COLUMNS if c in frame.columns]]
        dropped = [str(c) for c in raw.columns if c not in rename]
        return MappedFrame(frame=frame, dropped=dropped, labelled=labelled)

    def _missing_message(self, raw: pd.DataFrame, name: str, roles: list[str]) -> str:
        described = ", ".join(
            ROLES[role] + (f" (role {role}" + (f", mapped to {self.columns[role]!r})"
                                                if self.columns[role] != ROLES[role] else ")"))
            for role in roles)
        found = ", ".join(str(c) for c in raw.columns) or "none"
        return (f"{name}: missing column(s) {described}; the file has column(s) {found}. "
                "Map each role to one of the file's columns with fraudpipe ingest "
                f"--map ROLE=COLUMN, or in {MAPPING_FILE_NAME} at the share's root "
                f"(mapping from {self.origin})" + separator_hint(raw))


def resolve_mapping(share: Share, mapping_file: str | Path | None = None,
                    pairs: list[str] | None = None, timezone: str | None = None
                    ) -> ColumnMapping:
    """The mapping an ingest uses.

    `mapping_file` if given, else ``<share>/fraudpipe-mapping.json`` if the share has one,
    else the identity on the simulator's names; then the `--map` pairs and `--timezone`.
    """
    if mapping_file is not None:
        base = ColumnMapping.load(mapping_file)
    elif (share.root / MAPPING_FILE_NAME).is_file():
        base = ColumnMapping.load(share.root / MAPPING_FILE_NAME)
    else:
        base = ColumnMapping()
    return base.override(pairs, timezone)
