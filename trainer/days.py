"""What each day on the share is: arrived, scored, labelled, trained — read from its files.

The record is the share itself, no second bookkeeping: an arrived dataset says the day
came without labels, `datasets/labels/<day>.parquet` how many labels came since, the
ingest manifest how a training dataset was made (arrived labelled, or completed from
arrival + labels and by which rule), the scores file's metadata which checkpoint scored
it on arrival, and the lineage whether it is trained.
"""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq

from trainer.arrival import scored_by
from trainer.labels import arrived_dates
from trainer.share.layout import Share
from trainer.share.lineage import Lineage
from trainer.share.manifest import manifest_key, read_manifest


def _label_count(share: Share, day: dt.date) -> int:
    path = share.labels(day)
    return pq.read_metadata(path).num_rows if path.is_file() else 0


def day_states(share: Share) -> list[dict]:
    """One dict per day on the share, oldest first.

    Keys: date; state ("trained", "trainable": a training dataset not trained yet, or
    "awaiting labels"); arrived (came without labels); labels (labels received, arrived
    days); labelled_by ("arrived labelled", "all labelled", "7-day rule", ...; None while
    waiting); training_dataset; trained (checkpoint sha256 or None); scored_by (the
    checkpoint path that scored it: on arrival, or for a trained day the step's parent).
    """
    lineage = Lineage.load(share)
    chain = {e.date: e for e in lineage.chain()}
    by_sha = {e.sha256: e for e in lineage.entries}
    manifest = read_manifest(share)
    arrived = set(arrived_dates(share))
    rows = []
    for day in sorted(arrived | set(share.training_dates()) | set(chain)):
        entry = chain.get(day)
        recorded = manifest.get(manifest_key("training", day), {})
        has_dataset = share.training_dataset(day).is_file()
        scorer: str | None
        if entry is not None and entry.parent_sha256 in by_sha:
            scorer = by_sha[entry.parent_sha256].checkpoint  # the step scores, then trains
        else:
            scorer = (scored_by(share, day) or {}).get("checkpoint")
        row = {"date": day.isoformat(), "arrived": day in arrived,
               "labels": _label_count(share, day) if day in arrived else None,
               "labelled_by": (recorded.get("completed_by", "arrived labelled")
                               if has_dataset else None),
               "training_dataset": has_dataset,
               "trained": entry.sha256 if entry else None, "scored_by": scorer}
        row["state"] = ("trained" if entry else "trainable" if has_dataset
                        else "awaiting labels")
        rows.append(row)
    return rows
