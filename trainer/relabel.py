"""Late labels and late rows: data for days already complete, applied by a replay.

A label that arrives for a day whose training dataset exists (completed, often trained)
is stored like any other (`trainer.label_files`). It is *late* when it disagrees with the
training dataset (`late_labels`). New rows of a trained day are kept aside by the ingest
(`trainer.data.held_parts`). `apply_late_labels` rewinds the chain to the last checkpoint
before the first trained day either changes (`trainer.replay`, which merges the late
rows), then writes the late labels into the training datasets (each with a manifest note
of what changed); the days after it are then trained again as any ingested day
(`fraudpipe relabel`, or the daily pipeline with `apply_late_labels`). Conflicting labels
are never applied.
"""

from __future__ import annotations

import datetime as dt
import logging

import pyarrow.parquet as pq

from trainer.data.held_parts import held_days
from trainer.data.parquet import canonical_parquet_bytes
from trainer.data.schema import LABEL
from trainer.errors import FraudpipeError
from trainer.label_store import ID, effective_labels, labelled_dates, read_stored_labels
from trainer.late_rows import apply_held
from trainer.replay import replay_point, rewind_for_replay
from trainer.share.files import atomic_write_bytes, sha256_bytes
from trainer.share.layout import Share
from trainer.share.lineage import Lineage
from trainer.share.locks import file_lock, try_exclusive_lock
from trainer.share.manifest import manifest_key, read_manifest, write_manifest

log = logging.getLogger(__name__)


def late_labels(share: Share) -> list[dict]:
    """The complete days with late labels, oldest first.

    Each: date, trained, labels (transaction_id, label, dataset_label, arrived_at).
    """
    trained = Lineage.load(share).dates()
    found = []
    for day in labelled_dates(share):
        if not share.training_dataset(day).is_file():
            continue
        stored = read_stored_labels(share, day)
        known, _ = effective_labels(stored)
        dataset = pq.read_table(share.training_dataset(day), columns=[ID, LABEL]).to_pandas()
        on_file = dict(zip(dataset[ID].astype(str), dataset[LABEL], strict=True))
        arrived = dict(zip(stored[ID].astype(str), stored["ARRIVED_AT"], strict=True))
        labels = [{"transaction_id": tx, "label": label, "dataset_label": int(on_file[tx]),
                   "arrived_at": arrived.get(tx)}
                  for tx, label in sorted(known.items())
                  if tx in on_file and int(on_file[tx]) != label]
        if labels:
            found.append({"date": day.isoformat(), "trained": day in trained,
                          "labels": labels})
    return found


def late_summary(late: list[dict], held: list[dict] | None = None) -> str:
    """What late data waits, in words; "" when none.

    "3 late label(s) on 2 trained day(s)" (and the completed, untrained ones) for `late`
    (`late_labels`), "42 late row(s) on 1 trained day(s)" for `held` (`held_days`).
    """
    texts = []
    if late:
        n = sum(len(d["labels"]) for d in late)
        trained = sum(d["trained"] for d in late)
        texts.append(f"{n} late label(s) on {trained} trained day(s)")
        if len(late) > trained:
            texts[-1] += f" and {len(late) - trained} completed day(s) not trained yet"
    if held:
        texts.append(f"{sum(d['rows'] for d in held)} late row(s) on {len(held)} trained "
                     f"day(s)")
    return "; ".join(texts)


def apply_late_labels(share: Share) -> dict:
    """Rewind before the first trained day with late labels or late rows; write them in.

    The rewind merges the late rows kept aside (`trainer.late_rows.apply_held`); labels
    stored for those rows are filed, then every late label is written into its dataset.

    Returns:
        days (the datasets rewritten: date, labels), rows (the days given their late
        rows: date, rows, sources), rewound_to (the day whose checkpoint is the head now,
        "start", or None when no trained day changed), superseded.

    Raises:
        FraudpipeError: a day to rewrite is being trained right now.
    """
    from trainer.label_files import refile_unfiled

    late, held = late_labels(share), held_days(share, read_manifest(share))
    result: dict = {"days": [], "rows": [], "rewound_to": None, "superseded": []}
    if not late and not held:
        return result
    chain = Lineage.load(share).dates()
    trained = [dt.date.fromisoformat(d["date"]) for d in late if d["trained"]]
    trained += [dt.date.fromisoformat(d["date"]) for d in held
                if dt.date.fromisoformat(d["date"]) in chain]
    if trained:
        point = replay_point(Lineage.load(share), min(trained))
        result["superseded"] = [e.date.isoformat() for e in rewind_for_replay(share, point)]
        result["rewound_to"] = point.isoformat() if point else "start"
    if held:
        apply_held(share)  # the rewind applied those of trained days; now the others
        still = {d["date"] for d in held_days(share, read_manifest(share))}
        result["rows"] = [{k: d[k] for k in ("date", "rows", "sources")} for d in held
                          if d["date"] not in still]
    if result["rows"]:
        refile_unfiled(share)  # labels of the new rows waited for them
        late = late_labels(share)
    for item in late:
        day = dt.date.fromisoformat(item["date"])
        _rewrite(share, day, {x["transaction_id"]: x["label"] for x in item["labels"]})
        result["days"].append({"date": item["date"], "labels": len(item["labels"])})
    return result


def _rewrite(share: Share, day: dt.date, labels: dict[str, int]) -> None:
    """Write `labels` (id as text -> label) into the training dataset of `day`."""
    path = share.training_dataset(day)
    with file_lock(share.ingest_lock), try_exclusive_lock(share.training_lock(day)) as free:
        if not free:
            raise FraudpipeError(f"{day} is being trained right now; its late labels were not "
                                 "applied. Run fraudpipe relabel again once the step ends")
        if Lineage.load(share).entry_for(day) is not None:
            raise FraudpipeError(f"{day} is on the chain again (a train ran during the "
                                 "relabel); run fraudpipe relabel again")
        frame = pq.read_table(path).to_pandas()
        keys = frame[ID].astype(str)
        frame[LABEL] = keys.map(labels).fillna(frame[LABEL]).astype("int64").to_numpy()
        data = canonical_parquet_bytes(frame)
        atomic_write_bytes(path, data)
        manifest = read_manifest(share)
        entry = manifest.get(manifest_key("training", day), {})
        entry["relabelled"] = [*entry.get("relabelled", []), {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "labels": len(labels), "previous_sha256": entry.get("dataset_sha256")}]
        entry.update(dataset_sha256=sha256_bytes(data), frauds=int(frame[LABEL].sum()))
        manifest[manifest_key("training", day)] = entry
        write_manifest(share, manifest)
    log.info("%s: %d late label(s) written into %s", day, len(labels), path)
