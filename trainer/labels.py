"""Labels that arrive after their transactions, and the N-day rule that completes a day.

A day may arrive without labels (`share.arrived_dataset(day)`: the canonical columns minus
TX_FRAUD). Its labels come later, in files of their own: a transaction id and a label per
row, possibly only the confirmed frauds. `store_labels` files each label under its
transaction's day in `share.labels(day)`, merged with the labels received before; a
second, different label for one transaction is an error naming both files and rows, and
nothing is stored. Ids of no arrived day are reported, never silently dropped.

`complete_days` applies the handbook's rule "no label after N days means genuine": a day
is complete when every one of its transactions has a label, or when
``today >= day + N``. A complete day becomes a training dataset
(`share.training_dataset(day)`): its arrived rows with the labels received (missing = 0),
written atomically with an ingest-manifest entry that records where it came from and the
N used. From then on the step trains it exactly as a day that arrived labelled; the
arrived file stays. ``today`` defaults to the latest transaction day on the share (the
newest training or arrived dataset), so the rule follows the data, not the wall clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainer.data.label_delay import GENUINE_AFTER_DAYS
from trainer.data.mapping import resolve_mapping
from trainer.data.parquet import canonical_parquet_bytes
from trainer.data.schema import COLUMNS, LABEL
from trainer.errors import DatasetValidationError
from trainer.share.files import atomic_path, atomic_write_bytes, sha256_bytes, sha256_file
from trainer.share.layout import Share
from trainer.share.lineage import Lineage
from trainer.share.locks import file_lock, try_exclusive_lock
from trainer.share.manifest import manifest_key, read_manifest, write_manifest

log = logging.getLogger(__name__)

ID = "TRANSACTION_ID"

#: Column names a label file may use for each role, until a user mapping says otherwise:
#: fraudpipe's own, and the bank export's (`tx_id,is_fraud`).
LABEL_FILE_NAMES: dict[str, tuple[str, ...]] = {ID: (ID, "tx_id"), LABEL: (LABEL, "is_fraud")}

#: Columns of `share.labels(day)`: the label, and the file and row it came from.
STORED_COLUMNS = [ID, LABEL, "SOURCE", "ROW"]

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


@dataclass
class LabelsResult:
    """What one `store_labels` run did; every entry is a JSON-ready dict."""

    stored: list[dict] = field(default_factory=list)
    """Per day: date, new (labels added), known (already received), frauds, path."""
    unknown: list[dict] = field(default_factory=list)
    """Labels whose transaction id is in no arrived day: source, row, transaction_id."""
    late: list[dict] = field(default_factory=list)
    """Labels for a day already completed (its training dataset exists) that disagree
    with it: source, row, transaction_id, date, label, dataset_label. Not applied."""
    files: list[str] = field(default_factory=list)
    """The label files read."""

    def to_json(self) -> dict:
        """The result as JSON."""
        return asdict(self)

    def summary(self) -> str:
        """Human-readable lines: one per day stored, then the unknown and late labels."""
        lines = [f"labels     {s['date']}: {s['new']} new, {s['known']} already received "
                 f"({s['frauds']} fraud(s) on file)" for s in self.stored]
        for what, items in (("unknown", self.unknown), ("late", self.late)):
            for item in items[:10]:
                lines.append(f"{what:10} {item['source']} row {item['row']}: transaction "
                             f"{item['transaction_id']}" + (f" ({item['why']})" if "why" in item
                                                            else ""))
            if len(items) > 10:
                lines.append(f"{what:10} ... and {len(items) - 10} more (--json lists all)")
        lines.append(f"{len(self.files)} file(s): labels for {len(self.stored)} day(s), "
                     f"{len(self.unknown)} unknown transaction id(s), {len(self.late)} late")
        return "\n".join(lines)


def arrived_dates(share: Share) -> list[dt.date]:
    """Dates of the days that arrived without labels, oldest first."""
    days = []
    for path in share.arrived_dir.glob("*.parquet") if share.arrived_dir.is_dir() else []:
        with contextlib.suppress(ValueError):
            days.append(dt.date.fromisoformat(path.stem))
    return sorted(days)


def awaiting_labels(share: Share) -> list[dt.date]:
    """Arrived days that are not complete yet (no training dataset), oldest first."""
    return [d for d in arrived_dates(share) if not share.training_dataset(d).is_file()]


def default_today(share: Share) -> dt.date | None:
    """The latest transaction day on the share (training or arrived); None when empty."""
    days = share.training_dates() + arrived_dates(share)
    return max(days) if days else None


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
    names += list(LABEL_FILE_NAMES[role])
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
            f"one label; fix the wrong file and run again. Nothing was stored")
    return frame.drop_duplicates(ID, keep="first")


def _arrived_ids(share: Share, day: dt.date) -> pd.Series:
    """The transaction ids of an arrived day, in their own type (integers or text)."""
    return pq.read_table(share.arrived_dataset(day), columns=[ID]).column(0).to_pandas()


def _id_index(share: Share) -> pd.DataFrame:
    """TRANSACTION_ID (as text) -> DAY, over every arrived day."""
    frames = [pd.DataFrame({ID: _arrived_ids(share, day).astype(str).to_numpy(), "DAY": day})
              for day in arrived_dates(share)]
    if not frames:
        return pd.DataFrame({ID: pd.Series(dtype=str), "DAY": pd.Series(dtype=object)})
    return pd.concat(frames, ignore_index=True)


def read_stored_labels(share: Share, day: dt.date) -> pd.DataFrame:
    """The labels received so far for `day` (`STORED_COLUMNS`); empty when none."""
    path = share.labels(day)
    if not path.is_file():
        return pd.DataFrame({ID: pd.Series(dtype=object), LABEL: pd.Series(dtype="int64"),
                             "SOURCE": pd.Series(dtype=str), "ROW": pd.Series(dtype="int64")})
    return pq.read_table(path).to_pandas()


def store_labels(share: Share, source: str | Path,
                 mapping: dict[str, str] | None = None) -> LabelsResult:
    """File the labels of `source` (a file or a directory of them) by transaction day.

    Everything is checked before anything is written: a conflict (with another row, file
    or the labels already stored) raises and leaves the share as it was.

    Raises:
        DatasetValidationError: `source` is missing, a file is bad, or a label conflicts.
    """
    files = _label_files(Path(source))
    result = LabelsResult(files=[str(p) for p in files])
    mapping = {**share_label_columns(share), **(mapping or {})}
    incoming = [read_label_file(p, mapping) for p in files]
    if not incoming:
        return result
    labels = _check_consistent(pd.concat(incoming, ignore_index=True), "in the files read")
    with file_lock(share.labels_dir / ".labels.lock"):
        located = labels.merge(_id_index(share), on=ID, how="left")
        unknown = located["DAY"].isna()
        result.unknown = [{"source": r.SOURCE, "row": int(r.ROW), "transaction_id": r[0]}
                          for r in located[unknown].itertuples(index=False)]
        writes: dict[dt.date, pd.DataFrame] = {}
        for day, rows in located[~unknown].groupby("DAY", sort=True):
            if share.training_dataset(day).is_file():
                result.late += _late_labels(share, day, rows)
                continue
            native = _arrived_ids(share, day)
            rows = rows.assign(**{ID: rows[ID].map(dict(zip(native.astype(str), native,
                                                            strict=True)))})
            known = read_stored_labels(share, day)
            merged = _check_consistent(
                pd.concat([known, rows[STORED_COLUMNS]], ignore_index=True),
                f"{share.labels(day)} already holds a label for it")
            merged[ID] = merged[ID].astype(native.dtype)
            writes[day] = merged.sort_values(ID, kind="stable", ignore_index=True)
            result.stored.append({"date": day.isoformat(), "new": len(merged) - len(known),
                                  "known": len(known), "frauds": int(merged[LABEL].sum()),
                                  "path": str(share.labels(day))})
        for day, merged in writes.items():
            with atomic_path(share.labels(day)) as tmp:
                pq.write_table(pa.Table.from_pandas(merged, preserve_index=False), tmp)
    if result.unknown:
        log.warning("%d label(s) name a transaction id of no arrived day (first: %s row %s, "
                    "transaction %s)", len(result.unknown), result.unknown[0]["source"],
                    result.unknown[0]["row"], result.unknown[0]["transaction_id"])
    return result


def _late_labels(share: Share, day: dt.date, rows: pd.DataFrame) -> list[dict]:
    """Labels for a completed day that disagree with its training dataset (not applied)."""
    dataset = pq.read_table(share.training_dataset(day), columns=[ID, LABEL]).to_pandas()
    known = dict(zip(dataset[ID].astype(str), dataset[LABEL], strict=True))
    late = []
    for r in rows.itertuples(index=False):
        if known.get(r.TRANSACTION_ID) != r.TX_FRAUD:
            late.append({"source": r.SOURCE, "row": int(r.ROW), "transaction_id": r[0],
                         "date": day.isoformat(), "label": int(r.TX_FRAUD),
                         "dataset_label": None if r[0] not in known else int(known[r[0]]),
                         "why": f"{day} is already complete; its training dataset says "
                                f"{known.get(r[0])}"})
    return late


def labelled_frame(share: Share, day: dt.date) -> tuple[pd.DataFrame, int]:
    """The arrived rows of `day` with the labels received (missing = 0), and how many.

    TX_FRAUD takes its place in the canonical column order, so a day completed here has
    the same columns as one that arrived labelled.
    """
    arrived = pq.read_table(share.arrived_dataset(day)).to_pandas()
    stored = read_stored_labels(share, day)
    known = dict(zip(stored[ID].astype(str), stored[LABEL], strict=True))
    values = arrived[ID].astype(str).map(known)
    frame = arrived.copy()
    frame[LABEL] = values.fillna(0).astype("int64").to_numpy()
    order = [c for c in COLUMNS if c in frame.columns]
    order += [c for c in frame.columns if c not in order]
    return frame[order], int(values.notna().sum())


def complete_days(share: Share, today: dt.date | None = None,
                  genuine_after_days: int = GENUINE_AFTER_DAYS) -> list[dict]:
    """Turn every complete arrived day into a training dataset (the N-day rule).

    Args:
        share: the storage root.
        today: the day the rule counts from (default `default_today`).
        genuine_after_days: N: a transaction without a label N days after its day is
            genuine.

    Returns:
        One dict per day completed: date, how ("all labelled" or "N-day rule"), rows,
        labels (received), frauds, dataset_sha256.
    """
    if genuine_after_days < 0:
        raise ValueError(f"genuine_after_days={genuine_after_days}: expected 0 or more")
    today = today or default_today(share)
    done = []
    for day in awaiting_labels(share):
        frame, received = labelled_frame(share, day)
        if received == len(frame):
            how = "all labelled"
        elif today is not None and today >= day + dt.timedelta(days=genuine_after_days):
            how = f"{genuine_after_days}-day rule"
        else:
            continue
        entry = _write_training(share, day, frame, received, how, genuine_after_days)
        if entry is not None:
            done.append(entry)
    return done


def _write_training(share: Share, day: dt.date, frame: pd.DataFrame, received: int,
                    how: str, genuine_after_days: int) -> dict | None:
    """Write the training dataset and its manifest entry under the ingest's locks."""
    data = canonical_parquet_bytes(frame)
    labels_path = share.labels(day)
    entry = {
        "source": f"datasets/arrived/{day.isoformat()}.parquet + "
                  f"datasets/labels/{day.isoformat()}.parquet",
        "source_sha256": sha256_file(share.arrived_dataset(day)),
        "labels_sha256": sha256_file(labels_path) if labels_path.is_file() else None,
        "dataset_sha256": sha256_bytes(data),
        "rows": len(frame), "frauds": int(frame[LABEL].sum()),
        "from": "arrival + labels", "labels_received": received, "completed_by": how,
        "genuine_after_days": genuine_after_days,
        "ingested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with (file_lock(share.ingest_lock),
          try_exclusive_lock(share.training_lock(day)) as free):
        if not free or share.training_dataset(day).is_file():
            return None  # a step or another completion got there first
        if Lineage.load(share).entry_for(day) is not None:
            return None
        atomic_write_bytes(share.training_dataset(day), data)
        manifest = read_manifest(share)
        manifest[manifest_key("training", day)] = entry
        write_manifest(share, manifest)
    log.info("%s complete (%s): %d row(s), %d label(s) received, %d fraud(s) -> %s", day,
             how, len(frame), received, entry["frauds"], share.training_dataset(day))
    return {"date": day.isoformat(), "how": how, "rows": len(frame), "labels": received,
            "frauds": entry["frauds"], "dataset_sha256": entry["dataset_sha256"]}
