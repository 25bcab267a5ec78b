"""What each day on the share is: arrived, scored, labelled, trained — read from its files.

The record is the share itself, no second bookkeeping: an arrived dataset says the day
came without labels, the label record (`trainer.label_store`) which labels came since,
which conflict and which quarantined label file holds it back, the ingest manifest how a
training dataset was made (arrived labelled, or completed from arrival + labels and by
which rule), from which files and which late rows wait for it, the closing record whether
it is over, the scores file's metadata which checkpoint scored it on arrival and from
which datasets, and the lineage whether it is trained.
"""

from __future__ import annotations

from trainer.arrival import scored_by, scores_stale
from trainer.data.day_parts import is_closed, sources_of
from trainer.data.held_parts import held_days
from trainer.label_store import effective_labels, quarantined_days, read_stored_labels
from trainer.labels import arrived_dates, missing_ids
from trainer.relabel import late_labels
from trainer.share.layout import Share
from trainer.share.lineage import Lineage
from trainer.share.manifest import manifest_key, read_manifest


def _state(entry, has_dataset: bool, closed: bool, conflicts: list, held: list) -> str:
    if entry:
        return "trained"
    if has_dataset:
        return "trainable" if closed else "open"
    if conflicts:
        return "label conflict"
    if held:
        return "labels in quarantine"
    return "awaiting labels" if closed else "open"


def day_states(share: Share, lineage: Lineage | None = None,
               manifest: dict | None = None) -> list[dict]:
    """One dict per day on the share, oldest first.

    Keys: date; state ("trained"; "trainable": a training dataset not trained yet; "open":
    no later data shows the day is over; "label conflict"; "labels in quarantine";
    "awaiting labels"); arrived (came without labels); labels (labels received, arrived
    days); labelled_by ("arrived labelled", "all labelled", "7-day rule", ...; None while
    waiting); training_dataset; trained (checkpoint sha256 or None); scored_by (the
    checkpoint path that scored it: on arrival, or for a trained day the step's parent);
    scores_stale (its arrival scores read datasets that changed since); closed; sources
    (the files its rows came from); conflicts (ids labelled two ways); quarantined_labels
    (quarantined label files naming its transactions); late_labels (labels that disagree
    with its training dataset); late_rows, late_row_sources (new rows of a trained day
    kept aside, and their files: `trainer.data.held_parts`); labels_for_missing_ids
    (labels of ids no longer in it). `lineage` and `manifest`: as the caller read them
    (default: read here, once each).
    """
    lineage = Lineage.load(share) if lineage is None else lineage
    chain = {e.date: e for e in lineage.chain()}
    by_sha = {e.sha256: e for e in lineage.entries}
    manifest = read_manifest(share) if manifest is None else manifest
    arrived = set(arrived_dates(share))
    late = {d["date"]: len(d["labels"]) for d in late_labels(share, lineage)}
    held = {d["date"]: d for d in held_days(share, manifest)}
    held_by_day = quarantined_days(share)
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
        stored = read_stored_labels(share, day)
        _, conflicts = effective_labels(stored)
        held_labels = held_by_day.get(day.isoformat(), [])
        closed = is_closed(share, day, manifest)
        origin = manifest.get(manifest_key("arrived" if day in arrived else "training", day),
                              {})
        row = {"date": day.isoformat(), "arrived": day in arrived,
               "labels": int(stored["TRANSACTION_ID"].nunique()) if day in arrived else None,
               "labelled_by": (recorded.get("completed_by", "arrived labelled")
                               if has_dataset else None),
               "training_dataset": has_dataset,
               "trained": entry.sha256 if entry else None, "scored_by": scorer,
               "scores_stale": entry is None and scores_stale(share, day, manifest, lineage),
               "closed": closed, "sources": sources_of(origin), "conflicts": conflicts,
               "quarantined_labels": held_labels,
               "late_labels": late.get(day.isoformat(), 0),
               "late_rows": held.get(day.isoformat(), {}).get("rows", 0),
               "late_row_sources": held.get(day.isoformat(), {}).get("sources", []),
               "labels_for_missing_ids": (len(missing_ids(share, day, stored))
                                          if day in arrived else 0)}
        row["state"] = _state(entry, has_dataset, closed, conflicts, held_labels)
        rows.append(row)
    return rows


def describe(day: dict) -> str:
    """One line of `fraudpipe days` for a `day_states` row."""
    labels = "" if day["labels"] is None else f", {day['labels']} label(s) received"
    how = f", labelled: {day['labelled_by']}" if day["labelled_by"] else ""
    scorer = f", scored by {day['scored_by']}" if day["scored_by"] else ", not scored"
    if day["scores_stale"]:
        scorer += " (stale: its datasets changed since; fraudpipe score scores it again)"
    came = "arrived unlabelled" if day["arrived"] else "arrived labelled"
    extra = []
    if len(day["sources"]) > 1:
        extra.append(f"from {len(day['sources'])} files: {', '.join(day['sources'])}")
    if day["conflicts"]:
        extra.append(f"label conflict on transaction(s) "
                     f"{', '.join(map(str, day['conflicts'][:5]))}")
    if day["quarantined_labels"]:
        extra.append(f"label file(s) in quarantine: {', '.join(day['quarantined_labels'])}")
    if day["late_labels"]:
        extra.append(f"{day['late_labels']} late label(s) (fraudpipe relabel applies them)")
    if day["late_rows"]:
        extra.append(f"{day['late_rows']} late row(s) from "
                     f"{', '.join(day['late_row_sources'])} kept aside (fraudpipe relabel "
                     "merges them)")
    if day["labels_for_missing_ids"]:
        extra.append(f"{day['labels_for_missing_ids']} label(s) for ids no longer in the day")
    return (f"{day['date']}  {day['state']:15}  {came}{labels}{how}{scorer}"
            + "".join(f"; {e}" for e in extra))
