"""Labels that arrive after their transactions, and the rule that completes a day.

A day may arrive without labels (`share.arrived_dataset(day)`: the canonical columns minus
TX_FRAUD). Its labels come later, in files of their own: a transaction id and a label per
row, possibly only the confirmed frauds. `store_labels` reads each file on its own: a
good one is filed by transaction day in the share's label record (`trainer.label_store`:
every label kept with its file, row and arrival time; a conflict between files keeps
both), a bad one is quarantined with its reason and the others go on. Labels of a day
already completed are stored the same way and are "late" (`trainer.relabel` applies them).

`complete_days` applies the handbook's rule "no label after N days means genuine": a day
is complete when it is closed (`trainer.data.day_parts.is_closed`), none of its
transactions has conflicting labels, no quarantined label file names one of them, and
every transaction has a label or ``today >= day + N``. A complete day becomes a training
dataset (`share.training_dataset(day)`): its arrived rows with their labels (missing =
0), written atomically with an ingest-manifest entry that records where it came from, the
N used and the labels of ids no longer in the day. ``today`` defaults to the latest
transaction day on the share, so the rule follows the data, not the wall clock.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pyarrow.parquet as pq

from trainer.data.day_parts import is_closed
from trainer.data.label_delay import GENUINE_AFTER_DAYS
from trainer.data.parquet import canonical_parquet_bytes
from trainer.data.schema import COLUMNS, LABEL
from trainer.label_store import (
    ID,
    arrived_dates,
    conflict_detail,
    effective_labels,
    quarantined_days,
    read_files,
    read_stored_labels,
    unplaced_quarantine,
)
from trainer.share.files import atomic_write_bytes, sha256_bytes, sha256_file
from trainer.share.layout import Share
from trainer.share.lineage import Lineage
from trainer.share.locks import file_lock, try_exclusive_lock
from trainer.share.manifest import manifest_key, read_manifest, write_manifest

log = logging.getLogger(__name__)


def awaiting_labels(share: Share) -> list[dt.date]:
    """Arrived days that are not complete yet (no training dataset), oldest first."""
    return [d for d in arrived_dates(share) if not share.training_dataset(d).is_file()]


def default_today(share: Share) -> dt.date | None:
    """The latest transaction day on the share (training or arrived); None when empty."""
    days = share.training_dates() + arrived_dates(share)
    return max(days) if days else None


def labelled_frame(share: Share, day: dt.date) -> tuple[pd.DataFrame, int]:
    """The arrived rows of `day` with their labels (missing or conflicting = 0), and how many.

    TX_FRAUD takes its place in the canonical column order, so a day completed here has
    the same columns as one that arrived labelled.
    """
    arrived = pq.read_table(share.arrived_dataset(day)).to_pandas()
    known, _ = effective_labels(read_stored_labels(share, day))
    values = arrived[ID].astype(str).map(known)
    frame = arrived.copy()
    frame[LABEL] = values.fillna(0).astype("int64").to_numpy()
    order = [c for c in COLUMNS if c in frame.columns]
    order += [c for c in frame.columns if c not in order]
    return frame[order], int(values.notna().sum())


def missing_ids(share: Share, day: dt.date, stored: pd.DataFrame | None = None) -> list[str]:
    """Ids (as text) with a label stored for `day` that the day's rows no longer hold."""
    stored = read_stored_labels(share, day) if stored is None else stored
    if stored.empty or not share.arrived_dataset(day).is_file():
        return []
    here = set(pq.read_table(share.arrived_dataset(day), columns=[ID]).column(0)
               .to_pandas().astype(str))
    return sorted(set(stored[ID].astype(str)) - here)


def day_blocks(share: Share, day: dt.date) -> list[str]:
    """Why `day` cannot complete whatever its labels say (empty: nothing holds it back)."""
    blocks = []
    if not is_closed(share, day):
        blocks.append("open: no later data shows the day is over (fraudpipe close "
                      f"--date {day} closes it)")
    stored = read_stored_labels(share, day)
    _, conflicts = effective_labels(stored)
    if conflicts:
        blocks.append(f"label conflict on {len(conflicts)} transaction(s): "
                      + "; ".join(f"{tx} ({conflict_detail(stored, tx)})"
                                  for tx in conflicts[:3]))
    held = quarantined_days(share).get(day.isoformat(), []) + unplaced_quarantine(share)
    if held:
        blocks.append(f"label file(s) in quarantine name its transactions: "
                      f"{', '.join(sorted(set(held)))}")
    return blocks


def label_problems(share: Share) -> list[str]:
    """Every unresolved label problem on the share, one line each (empty: none).

    Conflicts (on any day, trained or not) and label files in quarantine: each keeps a
    day from completing, or a late label from being applied, until it is resolved.
    """
    from trainer.label_store import labelled_dates

    problems = []
    for day in labelled_dates(share):
        stored = read_stored_labels(share, day)
        _, conflicts = effective_labels(stored)
        problems += [f"label conflict on {day}: transaction {tx}: "
                     f"{conflict_detail(stored, tx)}" for tx in conflicts]
    for name, record in sorted(read_files(share).items()):
        held = record.get("quarantined")
        if held:
            days = ", ".join(held["days"]) or ("every waiting day (its ids do not read)"
                                                if held.get("ids_unreadable") else "no day")
            problems.append(f"label file in quarantine: {name} ({held['reason']}); holds "
                            f"back {days}")
    return problems


def complete_days(share: Share, today: dt.date | None = None,
                  genuine_after_days: int = GENUINE_AFTER_DAYS) -> list[dict]:
    """Turn every complete arrived day into a training dataset (see the module doc).

    Args:
        share: the storage root.
        today: the day the rule counts from (default `default_today`).
        genuine_after_days: N: a transaction without a label N days after its day is
            genuine.

    Returns:
        One dict per day completed: date, how ("all labelled" or "N-day rule"), rows,
        labels (received), frauds, dataset_sha256, labels_for_missing_ids.
    """
    from trainer.label_files import refile_unfiled

    if genuine_after_days < 0:
        raise ValueError(f"genuine_after_days={genuine_after_days}: expected 0 or more")
    refile_unfiled(share)
    today = today or default_today(share)
    done = []
    for day in awaiting_labels(share):
        if day_blocks(share, day):
            continue
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


def refresh_completed(share: Share, day: dt.date) -> dict | None:
    """Rewrite a completed, untrained day's training dataset from its arrived rows now.

    Ingest calls it when rows of an arrived day that was already completed change (a late
    part, a corrected file): the training dataset follows its rows, with the labels known
    (missing = 0, as the rule that completed it said); a label that arrives for the new
    rows later is a late label. A trained day never gets here (ingest refuses it).
    """
    recorded = read_manifest(share).get(manifest_key("training", day), {})
    if recorded.get("from") != "arrival + labels" or not share.training_dataset(day).is_file():
        return None
    frame, received = labelled_frame(share, day)
    return _write_training(share, day, frame, received, str(recorded.get("completed_by")),
                           int(recorded.get("genuine_after_days", GENUINE_AFTER_DAYS)),
                           replace=True)


def _write_training(share: Share, day: dt.date, frame: pd.DataFrame, received: int,
                    how: str, genuine_after_days: int, *, replace: bool = False
                    ) -> dict | None:
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
        "labels_for_missing_ids": missing_ids(share, day),
        "ingested_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with (file_lock(share.ingest_lock),
          try_exclusive_lock(share.training_lock(day)) as free):
        if not free or (share.training_dataset(day).is_file() and not replace):
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
            "frauds": entry["frauds"], "dataset_sha256": entry["dataset_sha256"],
            "labels_for_missing_ids": entry["labels_for_missing_ids"]}
