"""Label files: each read on its own, then filed in the share's label record or quarantined.

A label file holds one transaction id and one 0/1 label per row (`read_label_file`). A
good file is filed by transaction day (`trainer.label_store`), replacing the rows an
earlier file of the same name left (a corrected re-delivery); an identical re-delivery
changes nothing. A bad file (unreadable, a role without a column, a missing id, a value
that is not a label, a transaction labelled two ways inside it) is copied to the
quarantine with its reason, as ingest does for transactions, and recorded with the ids it
names that could be read, so that their days wait for it; the other files go on. Labels
of ids on no day yet wait in the record until their day arrives (`refile_unfiled`).
`withdraw_label_files` removes a file's labels and its quarantine record.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainer.data.mapping import resolve_mapping
from trainer.data.quarantine import quarantine
from trainer.data.schema import LABEL
from trainer.errors import DatasetValidationError
from trainer.label_store import (
    ID,
    STORED_COLUMNS,
    arrived_dates,
    conflict_detail,
    effective_labels,
    label_lock,
    now,
    read_files,
    read_stored_labels,
    read_unfiled,
    write_files,
    write_stored_labels,
    write_unfiled,
)
from trainer.share.files import sha256_file
from trainer.share.layout import Share
from trainer.share.locks import file_lock

log = logging.getLogger(__name__)

#: Column names a label file may use for each role, until a user mapping says otherwise:
#: fraudpipe's own, and the bank export's (`tx_id,is_fraud`).
LABEL_FILE_NAMES: dict[str, tuple[str, ...]] = {ID: (ID, "tx_id"), LABEL: (LABEL, "is_fraud")}

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


@dataclass
class LabelsResult:
    """What one `store_labels` run did; every entry is a JSON-ready dict."""

    stored: list[dict] = field(default_factory=list)
    """Per day: date, new (labels added), known (already received), frauds, path."""
    unchanged: list[str] = field(default_factory=list)
    """Files already stored exactly as they are: nothing changed."""
    quarantined: list[dict] = field(default_factory=list)
    """Bad files: source, reason, quarantined_to, days (the days whose ids it names)."""
    unknown: list[dict] = field(default_factory=list)
    """Labels whose transaction id is on no day yet (kept; filed when the day arrives):
    source, row, transaction_id."""
    conflicts: list[dict] = field(default_factory=list)
    """Transactions of the days filed here labelled two ways: date, transaction_id, detail."""
    files: list[str] = field(default_factory=list)
    """The label files read."""

    def to_json(self) -> dict:
        """The result as JSON."""
        return asdict(self)

    def summary(self) -> str:
        """Human-readable lines: days stored, files quarantined, unknown ids, conflicts."""
        lines = [f"labels     {s['date']}: {s['new']} new, {s['known']} already received "
                 f"({s['frauds']} fraud(s) on file)" for s in self.stored]
        lines += [f"unchanged  {name}" for name in self.unchanged]
        lines += [f"quarantined {q['source']}: {q['reason']}\n  -> copied to "
                  f"{q['quarantined_to']}" for q in self.quarantined]
        for item in self.unknown[:10]:
            lines.append(f"unknown    {item['source']} row {item['row']}: transaction "
                         f"{item['transaction_id']} (on no day yet: kept until it arrives)")
        if len(self.unknown) > 10:
            lines.append(f"unknown    ... and {len(self.unknown) - 10} more (--json lists all)")
        lines += [f"conflict   {c['date']}: transaction {c['transaction_id']}: {c['detail']}"
                  for c in self.conflicts]
        lines.append(f"{len(self.files)} file(s): labels for {len(self.stored)} day(s), "
                     f"{len(self.unchanged)} unchanged, {len(self.quarantined)} quarantined, "
                     f"{len(self.unknown)} unknown transaction id(s), {len(self.conflicts)} "
                     f"conflicting")
        return "\n".join(lines)


def share_label_columns(share: Share) -> dict[str, str]:
    """The share's column mapping (`trainer.data.mapping`) for a label file's two roles."""
    columns = resolve_mapping(share).columns
    return {columns["transaction_id"]: ID, columns["label"]: LABEL}


def _label_files(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    if source.is_file():
        return [source]
    raise DatasetValidationError(f"{source}: no such file or directory (expected a label "
                                 f"file or a directory of them)")


def _pick(frame: pd.DataFrame, role: str, mapping: dict[str, str], name: str) -> str:
    names = [user for user, canonical in mapping.items() if canonical == role]
    names = list(dict.fromkeys(names + list(LABEL_FILE_NAMES[role])))  # each name once
    for column in names:
        if column in frame.columns:
            return column
    raise DatasetValidationError(
        f"{name}: no column for the {role} role; expected one of {', '.join(names)}, found "
        f"{', '.join(map(str, frame.columns)) or 'no columns'}")


def _label_value(value: object, name: str, row: int, tx: object) -> int:
    text = str(value).strip().lower()
    if text in _TRUE or text == "1.0":
        return 1
    if text in _FALSE or text == "0.0":
        return 0
    raise DatasetValidationError(f"{name}: row {row} (transaction {tx}): label {value!r} is "
                                 f"not a label; expected 0 or 1 (or true/false)")


def read_label_file(path: Path, mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """One label file as rows of TRANSACTION_ID (text), TX_FRAUD, SOURCE and ROW.

    Args:
        path: a CSV or Parquet file; rows are numbered from 0, the first data row.
        mapping: the user's column name -> TRANSACTION_ID or TX_FRAUD (`store_labels`
            starts from the share's mapping file); the canonical names and the bank
            export's `tx_id,is_fraud` are always accepted.

    Raises:
        DatasetValidationError: unreadable file, a role without a column, a missing id, a
            label that is not 0/1, or one transaction labelled twice differently.
    """
    try:
        if path.suffix == ".parquet":
            raw = pq.read_table(path).to_pandas()
        elif path.suffix == ".csv":
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            raise DatasetValidationError(f"{path.name}: not a label file; expected .csv or "
                                         f".parquet with columns TRANSACTION_ID,TX_FRAUD")
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DatasetValidationError(f"{path}: unreadable label file ({exc})") from exc
    mapping = mapping or {}
    ids = raw[_pick(raw, ID, mapping, path.name)].astype(str).str.strip()
    labels_in = raw[_pick(raw, LABEL, mapping, path.name)]
    missing = (ids == "") | (ids == "nan") | (ids == "None")
    if missing.any():
        row = int(missing.to_numpy().nonzero()[0][0])
        raise DatasetValidationError(f"{path.name}: row {row}: the transaction id is "
                                     f"missing; expected one on every row")
    labels = [_label_value(v, path.name, i, ids.iloc[i]) for i, v in enumerate(labels_in)]
    frame = pd.DataFrame({ID: ids.to_numpy(), LABEL: pd.array(labels, dtype="int64"),
                          "SOURCE": path.name, "ROW": range(len(ids))})
    frame["ROW"] = frame["ROW"].astype("int64")
    return _check_consistent(frame, f"within {path.name}")


def _check_consistent(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Drop repeated equal labels; a transaction labelled two ways is an error."""
    by_id = frame.groupby(ID, sort=False)[LABEL].nunique()
    if (by_id > 1).any():
        tx = by_id[by_id > 1].index[0]
        rows = frame[frame[ID] == tx]
        named = "; ".join(f"{r.SOURCE} row {r.ROW}: {r.TX_FRAUD}" for r in rows.itertuples())
        raise DatasetValidationError(
            f"conflicting labels for transaction {tx} ({where}): {named}. A transaction has "
            f"one label; fix the wrong file and deliver it again")
    return frame.drop_duplicates(ID, keep="first")



def readable_ids(path: Path, mapping: dict[str, str]) -> list[str] | None:
    """The transaction ids a bad label file names, as far as they read; None if none do."""
    try:
        raw = (pq.read_table(path).to_pandas() if path.suffix == ".parquet"
               else pd.read_csv(path, dtype=str, keep_default_na=False))
        ids = raw[_pick(raw, ID, mapping, path.name)].astype(str).str.strip()
    except (OSError, ValueError, pa.ArrowException, DatasetValidationError):
        return None
    return sorted(set(ids[(ids != "") & (ids != "nan") & (ids != "None")]))


def _day_ids(share: Share, day: dt.date) -> pd.Series:
    """The transaction ids of a day, in their own type: its arrived rows, else its dataset."""
    path = (share.arrived_dataset(day) if share.arrived_dataset(day).is_file()
            else share.training_dataset(day))
    return pq.read_table(path, columns=[ID]).column(0).to_pandas()


def id_index(share: Share) -> pd.DataFrame:
    """KEY (the id as text) -> DAY, over every arrived or training day."""
    days = sorted(set(arrived_dates(share)) | set(share.training_dates()))
    frames = [pd.DataFrame({"KEY": _day_ids(share, day).astype(str).to_numpy(), "DAY": day})
              for day in days]
    if not frames:
        return pd.DataFrame({"KEY": pd.Series(dtype=str), "DAY": pd.Series(dtype=object)})
    return pd.concat(frames, ignore_index=True).drop_duplicates("KEY")


def _file(share: Share, rows: pd.DataFrame, index: pd.DataFrame, replacing: set[str],
          result: LabelsResult) -> None:
    """File `rows` (ids as text) by day, dropping the rows of the files in `replacing`.

    Rows of no day go to the unfiled labels. The caller holds `label_lock`.
    """
    located = rows.assign(KEY=rows[ID].astype(str)).merge(index, on="KEY", how="left")
    unknown = located["DAY"].isna()
    unfiled = read_unfiled(share)
    unfiled = unfiled[~unfiled["SOURCE"].isin(replacing)]
    write_unfiled(share, pd.concat([unfiled, located.loc[unknown, STORED_COLUMNS]],
                                   ignore_index=True))
    result.unknown += [{"source": r.SOURCE, "row": int(r.ROW), "transaction_id": r.KEY}
                       for r in located[unknown].itertuples(index=False)]
    by_day = dict(iter(located[~unknown].groupby("DAY", sort=True)))
    for day in sorted(set(by_day) | _days_of(share, replacing)):
        known = read_stored_labels(share, day)
        kept = known[~known["SOURCE"].isin(replacing)]
        new = by_day.get(day, located.iloc[:0])
        native = _day_ids(share, day)
        if len(new):
            new = new.assign(**{ID: new["KEY"].map(dict(zip(native.astype(str), native,
                                                            strict=True)))})
        merged = pd.concat([kept, new[STORED_COLUMNS]], ignore_index=True)
        merged[ID] = merged[ID].astype(native.dtype)
        write_stored_labels(share, day, merged)
        labels, conflicts = effective_labels(merged)
        result.conflicts += [{"date": day.isoformat(), "transaction_id": tx,
                              "detail": conflict_detail(merged, tx)} for tx in conflicts]
        if len(new):
            before = set(kept[ID].astype(str))
            result.stored.append({"date": day.isoformat(),
                                  "new": int((~new["KEY"].isin(before)).sum()),
                                  "known": len(known),
                                  "frauds": sum(labels.values()),
                                  "path": str(share.labels(day))})


def _days_of(share: Share, names: set[str]) -> set[dt.date]:
    """The days the stored versions of the label files `names` were filed under."""
    record = read_files(share)
    return {dt.date.fromisoformat(day) for name in names
            for day in (record.get(name, {}).get("stored") or {}).get("days", [])}


def store_labels(share: Share, source: str | Path,
                 mapping: dict[str, str] | None = None) -> LabelsResult:
    """File the labels of `source` (a file or a directory of them), each file on its own.

    A bad file is quarantined and the others are filed; conflicts between files are kept
    and reported (`LabelsResult.conflicts`), never resolved by a guess.

    Raises:
        DatasetValidationError: `source` does not exist.
    """
    files = _label_files(Path(source))
    result = LabelsResult(files=[str(p) for p in files])
    mapping = {**share_label_columns(share), **(mapping or {})}
    if not files:
        return result
    with file_lock(label_lock(share)):
        index = id_index(share)
        for path in files:
            _store_file(share, path, mapping, index, result)
    if result.unknown:
        log.warning("%d label(s) name a transaction id of no day on the share yet (first: %s "
                    "row %s, transaction %s): kept until their day arrives",
                    len(result.unknown), result.unknown[0]["source"], result.unknown[0]["row"],
                    result.unknown[0]["transaction_id"])
    return result


def _store_file(share: Share, path: Path, mapping: dict[str, str], index: pd.DataFrame,
                result: LabelsResult) -> None:
    """Store one label file, or quarantine it; record it under its name."""
    record = read_files(share)
    known = record.get(path.name, {})
    digest = sha256_file(path)
    if (known.get("stored") or {}).get("sha256") == digest:
        result.unchanged.append(path.name)
        return
    try:
        rows = read_label_file(path, mapping)
    except DatasetValidationError as exc:
        held = known.get("quarantined") or {}
        if held.get("sha256") != digest:
            copy = quarantine(path, share, str(exc))
            ids = readable_ids(path, mapping)
            days = sorted({d.isoformat() for d in index[index["KEY"].isin(ids or [])]["DAY"]})
            held = {"sha256": digest, "reason": str(exc), "quarantined_to":
                    copy["quarantined_to"], "ids": ids or [], "ids_unreadable": ids is None,
                    "days": days, "at": now()}
            record[path.name] = {**known, "quarantined": held}
            write_files(share, record)
        result.quarantined.append({"source": str(path), "reason": held["reason"],
                                   "quarantined_to": held["quarantined_to"],
                                   "days": held["days"]})
        return
    rows = rows.assign(ARRIVED_AT=now())
    _file(share, rows, index, {path.name}, result)
    days = sorted({d.isoformat() for d in
                   index[index["KEY"].isin(set(rows[ID].astype(str)))]["DAY"]})
    record = read_files(share)
    record[path.name] = {"stored": {"sha256": digest, "arrived_at": now(), "days": days},
                         "quarantined": None}
    write_files(share, record)


def refile_unfiled(share: Share) -> list[dict]:
    """File the waiting labels whose transaction's day has arrived since; return them."""
    result = LabelsResult()
    with file_lock(label_lock(share)):
        waiting = read_unfiled(share)
        if waiting.empty:
            return []
        index = id_index(share)
        here = waiting[waiting[ID].astype(str).isin(set(index["KEY"]))]
        if here.empty:
            return []
        write_unfiled(share, waiting.drop(here.index))
        _file(share, here, index, set(), result)
        record = read_files(share)
        for name, rows in here.groupby("SOURCE"):
            stored = (record.get(name) or {}).get("stored")
            if stored is not None:
                days = set(stored.get("days", []))
                days |= {d.isoformat() for d in
                         index[index["KEY"].isin(set(rows[ID].astype(str)))]["DAY"]}
                stored["days"] = sorted(days)
        write_files(share, record)
    return result.stored


def withdraw_label_files(share: Share, names: list[str]) -> list[dict]:
    """Remove the labels and the quarantine record of each label file named.

    Returns:
        One dict per name: source, labels (removed), quarantine_cleared.

    Raises:
        DatasetValidationError: a name the record does not know.
    """
    done = []
    with file_lock(label_lock(share)):
        record = read_files(share)
        unknown = [n for n in names if n not in record]
        if unknown:
            raise DatasetValidationError(
                f"no label file named {', '.join(unknown)} on the share; known: "
                f"{', '.join(sorted(record)) or 'none'}")
        for name in names:
            removed = 0
            for day in sorted(_days_of(share, {name})):
                stored = read_stored_labels(share, day)
                keep = stored[stored["SOURCE"] != name]
                removed += len(stored) - len(keep)
                write_stored_labels(share, day, keep)
            waiting = read_unfiled(share)
            removed += int((waiting["SOURCE"] == name).sum())
            write_unfiled(share, waiting[waiting["SOURCE"] != name])
            done.append({"source": name, "labels": removed,
                         "quarantine_cleared": bool(record[name].get("quarantined"))})
            record.pop(name)
        write_files(share, record)
    return done
