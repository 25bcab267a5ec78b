"""Scoring a day the moment it arrives, before its labels: today's alerts.

An arrived day (`share.arrived_dataset(day)`, no TX_FRAUD) is scored by the head model,
the last checkpoint of the chain, and its scores and top cards are written to
`share.scores(day)` in the step's format (`trainer.evaluation.scoring.write_scores`), with
the checkpoint that scored it in the file's Parquet metadata (`SCORED_BY_KEY`). When the
day is trained later, its step scores it again with the model just before it and
replaces the file (those scores name no checkpoint: the lineage entry's parent is it).

Features of an arrived day D come from the raw history of the 37 days before it (50 for a
learner that reads the card inputs), which may mix training datasets (labelled) and
arrived ones (not yet):

- customer windows count every transaction, labelled or not;
- terminal windows end 7 days before each transaction (``TERMINAL_DELAY_DAYS``) and take
  the labels known so far, a missing label counting as genuine.

Terminal windows of D read labels of days up to D - 7 only. With the N-day rule
(`trainer.labels`) for N <= 7 and `complete_days` run first (the daily flow does), every
such day with today >= D is complete, its training dataset fixed, so the features equal
those the step computes for D once D is labelled: the same alerts, bit for bit, as the
labelled path would give with the same model. With N > 7 the terminal risk of D may
still miss labels that arrive later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field

import pandas as pd
import pyarrow.parquet as pq

from trainer.evaluation import scoring
from trainer.features.cards import CARD_HISTORY_DAYS
from trainer.features.compute import HISTORY_DAYS, INPUT_COLUMNS
from trainer.features.prepared import features_of_day_frame
from trainer.labels import arrived_dates, labelled_frame
from trainer.learners.registry import uses_cards, uses_profiles
from trainer.share.checkpoints import load_checkpoint
from trainer.share.layout import Share
from trainer.share.lineage import Entry, Lineage
from trainer.share.locks import try_exclusive_lock
from trainer.share.manifest import manifest_key, read_manifest

log = logging.getLogger(__name__)

#: Parquet metadata key of a scores file written on arrival: which checkpoint scored it.
SCORED_BY_KEY = b"fraudpipe.scored_by"


@dataclass
class ArrivalScoring:
    """What one `score_arrived_days` run did."""

    scored: list[dict] = field(default_factory=list)
    """Per day scored: date, scores_file and the `scored_by` record."""
    unscored: list[str] = field(default_factory=list)
    """Arrived days left unscored because there is no head model yet."""
    message: str = ""
    """One line for the log and the run's report."""

    def to_json(self) -> dict:
        """The result as JSON."""
        return asdict(self)


def day_transactions(share: Share, day: dt.date) -> pd.DataFrame | None:
    """The feature inputs of one day: its training dataset, else arrived rows + labels.

    None when the share has neither. `trainer.serving` reads an online day's history
    through this too, so its features see the same rows as an arrived day's.
    """
    if share.training_dataset(day).is_file():
        return pq.read_table(share.training_dataset(day), columns=INPUT_COLUMNS).to_pandas()
    if share.arrived_dataset(day).is_file():
        return labelled_frame(share, day)[0][INPUT_COLUMNS]
    return None


def arrived_features(share: Share, day: dt.date, *, profiles: bool = False,
                     cards: bool = False) -> pd.DataFrame:
    """Features of the arrived day `day` from the 37 days before it (see the module doc).

    Returns:
        ``compute_features``' frame: one row per transaction of `day`; with `profiles`,
        the profile columns after it, with `cards` the card columns last (from the
        ``CARD_HISTORY_DAYS`` days before it). Computed by `trainer.features.prepared`, the
        implementation `fraudpipe serve` scores each transaction with.
    """
    back = CARD_HISTORY_DAYS if cards else HISTORY_DAYS
    days = [day - dt.timedelta(days=b) for b in range(back, 0, -1)]
    found = [f for d in days if (f := day_transactions(share, d)) is not None]
    own = labelled_frame(share, day)[0][INPUT_COLUMNS]
    return features_of_day_frame(pd.concat([*found, own], ignore_index=True), day,
                                 profiles=profiles, cards=cards)


def inputs_signature(share: Share, day: dt.date, manifest: dict | None = None, *,
                     cards: bool = False) -> str:
    """sha256 over the datasets `day`'s features read: the day and the 37 days before it.

    With `cards` (a learner that reads the card inputs), the 50 days before it.

    Each day counts by its arrived dataset's sha256 when it arrived unlabelled (that file
    stays when the day completes), else its training dataset's, as the ingest manifest
    records them: a day replaced or merged since changes the signature, its labels do not.
    """
    manifest = read_manifest(share) if manifest is None else manifest
    parts = []
    for back in range(CARD_HISTORY_DAYS if cards else HISTORY_DAYS, -1, -1):
        other = day - dt.timedelta(days=back)
        entry = (manifest.get(manifest_key("arrived", other))
                 or manifest.get(manifest_key("training", other)) or {})
        parts.append(f"{other}:{entry.get('dataset_sha256')}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def scores_stale(share: Share, day: dt.date, manifest: dict | None = None,
                 lineage: Lineage | None = None) -> bool:
    """True when `day`'s arrival scores were computed from datasets that changed since.

    The days its scores read are those of the learner of the checkpoint that scored it
    (looked up in `lineage`, default: read here).
    """
    record = scored_by(share, day)
    if not (record and record.get("inputs")):
        return False
    lineage = Lineage.load(share) if lineage is None else lineage
    entry = lineage.by_sha(record.get("sha256", ""))
    cards = entry is not None and uses_cards(entry.learner)
    return record["inputs"] != inputs_signature(share, day, manifest, cards=cards)


def scored_by(share: Share, day: dt.date) -> dict | None:
    """The record of the checkpoint that scored `day` on arrival; None otherwise."""
    path = share.scores(day)
    if not path.is_file():
        return None
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(SCORED_BY_KEY)
    return json.loads(raw) if raw else None


def score_arrived(share: Share, day: dt.date, head: Entry) -> dict:
    """Score the arrived day `day` with the checkpoint of `head`; write its scores file.

    Returns:
        date, scores_file and scored_by (checkpoint, sha256, trained_through, scored_at).
    """
    model = load_checkpoint(share.root / head.checkpoint, head.sha256)
    frame = arrived_features(share, day, profiles=uses_profiles(head.learner),
                             cards=uses_cards(head.learner))
    record = {"checkpoint": head.checkpoint, "sha256": head.sha256,
              "trained_through": head.date.isoformat(), "when": "on arrival, before its labels",
              "scored_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "inputs": inputs_signature(share, day, cards=uses_cards(head.learner))}
    scoring.write_scores(share, day, frame, scoring.score_day(model, frame, head.learner),
                         metadata={SCORED_BY_KEY: json.dumps(record, sort_keys=True).encode()},
                         model=model, learner=head.learner)
    log.info("scored %s on arrival with the model trained through %s (%s): %s", day,
             head.date, head.sha256[:12], share.scores(day))
    return {"date": day.isoformat(), "scores_file": str(share.scores(day)), "scored_by": record}


def unscored_days(share: Share, lineage: Lineage | None = None,
                  manifest: dict | None = None) -> list[dt.date]:
    """Arrived days not trained yet, oldest first, whose scores are stale.

    Stale: not the head model's, or computed from datasets that changed since
    (`inputs_signature`). `lineage` and `manifest`: as the caller read them (default:
    read here).
    """
    lineage = Lineage.load(share) if lineage is None else lineage
    trained = lineage.dates()
    manifest = read_manifest(share) if manifest is None else manifest
    return [d for d in arrived_dates(share) if d not in trained
            and (lineage.head is None
                 or (scored_by(share, d) or {}).get("sha256") != lineage.head
                 or scores_stale(share, d, manifest, lineage))]


def score_arrived_days(share: Share, lineage: Lineage | None = None,
                       manifest: dict | None = None) -> ArrivalScoring:
    """Score every arrived, untrained day the head has not scored yet (none: say so).

    `lineage` and `manifest`: as the caller read them (default: read here). Each day is
    checked against the lineage again under its training lock before it is scored.
    """
    lineage = Lineage.load(share) if lineage is None else lineage
    days = unscored_days(share, lineage, manifest)
    head = lineage.head_entry
    result = ArrivalScoring()
    if not days:
        result.message = "no arrived day to score (every one is trained or scored by the head)"
    elif head is None:
        result.unscored = [d.isoformat() for d in days]
        result.message = (f"no head model yet (nothing trained): {len(days)} arrived day(s) "
                          f"({days[0]} .. {days[-1]}) not scored; they will be once the first "
                          f"day is trained")
    else:
        for day in days:
            # A step holds its day's lock shared until it has committed: while it trains
            # the day, its own scores are due; once committed, the day is not arrival's.
            with try_exclusive_lock(share.training_lock(day)) as free:
                if free and day not in Lineage.load(share).dates():
                    result.scored.append(score_arrived(share, day, head))
        done = [s["date"] for s in result.scored]
        result.message = (f"scored {len(done)} arrived day(s) with the model trained through "
                          f"{head.date}: {', '.join(done) or 'none (being trained)'}")
    return result
