"""One training step: continue the chain by one day.

For day D: load the head checkpoint (sha256 verified) -> features for D from the head's
carried feature state, D and its boundary days (`trainer.features.carried`), the profile
columns (and the card inputs) too if the chain's learner reads them (`...registry.learner_inputs`)
-> score D with the head model before training on it (the day's alerts, prequential
metrics) ->
`partial_fit` on D -> write the checkpoint and the new feature state atomically -> commit
both as the new head by compare-and-swap -> rewrite the reports from the lineage.

Every write is atomic and the head moves last, so a step killed anywhere leaves the
share consistent and running it again completes it. A day already on the chain is a
no-op; a day before the head is refused (that is a replay).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from threadpoolctl import threadpool_limits

from trainer import faults
from trainer.errors import (
    DatasetValidationError,
    InputChangedError,
    LineageError,
    OutOfOrderError,
    PermanentError,
)
from trainer.evaluation import scoring
from trainer.features.carried import carried_features
from trainer.learners import DEFAULT_LEARNER
from trainer.learners.registry import make_learner, uses_cards, uses_profiles
from trainer.memory import keep_freed_memory
from trainer.model import fraud_scores
from trainer.replay import replay_command
from trainer.report import write_reports
from trainer.share.checkpoints import dump_model, load_checkpoint, verified_bytes
from trainer.share.files import publish_temp, sha256_bytes, sha256_file, write_temp
from trainer.share.layout import Share
from trainer.share.lineage import Entry, Lineage, commit
from trainer.share.locks import shared_lock
from trainer.versions import library_versions

log = logging.getLogger(__name__)

#: (storage root, checkpoint sha256, model): the model the last step of this process
#: committed. The next step of the same chain in this process (`fraudpipe train`, a
#: flow's drain: a backfill's every day) continues from this object instead of parsing
#: back the file it just wrote. Taken by that step (it trains the model in place).
_committed: tuple[Path, str, object] | None = None
_committed_lock = threading.Lock()


class StepStatus(StrEnum):
    """What a step did with its day."""

    TRAINED = "trained"
    SKIPPED = "skipped"  # the day was already on the chain


@dataclass
class StepResult:
    """What one step did."""

    date: dt.date
    status: StepStatus
    checkpoint_sha256: str | None = None
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    gap_days: int = 0

    @classmethod
    def of_entry(cls, entry: Entry, seconds: float = 0.0) -> StepResult:
        """The result of the step that committed `entry` (e.g. in an Argo pod)."""
        return cls(entry.date, StepStatus.TRAINED, entry.sha256, entry.metrics, seconds,
                   entry.gap_days)

    def to_json(self) -> dict:
        """The result as JSON: what the CLI prints and the flows collect."""
        return {"date": self.date.isoformat(), "status": str(self.status),
                "checkpoint_sha256": self.checkpoint_sha256, "metrics": self.metrics,
                "seconds": round(self.seconds, 3), "gap_days": self.gap_days}


def run_step(share: Share, day: dt.date, *, learner: str | None = None,
             guard: Callable[[], None] | None = None) -> StepResult:
    """Train the chain's head on `day` and commit the result as the new head.

    Args:
        share: the storage root.
        day: the dataset's date; `datasets/training/<day>.parquet` must be ingested.
        learner: learner name for a new chain; must match the chain's learner otherwise.
        guard: called under the lineage lock right before the head moves; raises to
            abort the commit (a worker that lost its lease raises `LeaseLostError`).

    Raises:
        OutOfOrderError: `day` is before the head's day.
        DatasetValidationError: the day's dataset is missing or unreadable.
        HeadMovedError: another step moved the head meanwhile.
    """
    started = time.perf_counter()
    keep_freed_memory()  # the day's arrays are reused, not faulted in again (trainer.memory)
    lineage = Lineage.load(share)
    head = lineage.head_entry
    if day in lineage.dates():
        log.info("%s is already on the chain; nothing to do", day)
        write_reports(share, lineage)  # a step killed after its commit left these stale
        return StepResult(day, StepStatus.SKIPPED,
                          seconds=time.perf_counter() - started)
    if head is not None and day < head.date:
        raise OutOfOrderError(
            f"{day} is a late day: it is before the head ({head.date}) and the chain only "
            f"moves forward. It needs a replay, which retrains every day after it: "
            f"{replay_command(share, day)}"
        )
    # Held for the whole step: an ingest cannot replace the dataset being trained on.
    # One BLAS thread: the MLP's products are a day's rows by a few dozen units, where
    # OpenBLAS' extra threads cost 0.12-0.26 s of CPU a step and made it no shorter
    # (bench/RESULTS.md); a step's pod asks for one core. Same numbers on any thread count.
    with shared_lock(share.training_lock(day)), threadpool_limits(limits=1, user_api="blas"):
        return _train_and_commit(share, day, lineage, learner, guard, started)


def _train_and_commit(share: Share, day: dt.date, lineage: Lineage, learner: str | None,
                      guard: Callable[[], None] | None, started: float) -> StepResult:
    """The body of `run_step` once the day is known to extend the chain."""
    head = lineage.head_entry
    dataset = share.training_dataset(day)
    if not dataset.is_file():
        raise DatasetValidationError(f"{dataset}: no ingested dataset for {day}; ingest it first")
    dataset_sha = sha256_file(dataset)

    if head is None:
        model, learner_name, gap = make_learner(learner), learner or DEFAULT_LEARNER, 0
    else:
        if learner is not None and learner != head.learner:
            raise PermanentError(f"the chain uses learner {head.learner!r}, not {learner!r}; "
                                 f"start a new storage root or replay from scratch to switch")
        model = _head_model(share, head)
        learner_name, gap = head.learner, (day - head.date).days - 1

    # The learner fixes the model's inputs: the profile columns only for one that reads them.
    carried = carried_features(share, day, head.date if head else None,
                               head.feature_state_sha256 if head else None,
                               profiles=uses_profiles(learner_name),
                               cards=uses_cards(learner_name))
    frame = carried.features
    X, y = scoring.model_inputs(frame, learner_name), frame["TX_FRAUD"].to_numpy()
    metrics: dict = {"transactions": int(len(y)), "frauds": int(y.sum())}
    if head is not None:
        scores = fraud_scores(model, X)  # the X trained on below: one copy of the inputs
        ranks = scoring.write_scores(share, day, frame, scores, model=model,
                                     learner=learner_name)
        metrics["prequential"] = scoring.day_metrics(frame, scores, ranks)
    model.partial_fit(X, y)
    metrics["train_accuracy"], metrics["train_accuracy_rows"] = scoring.training_accuracy(
        model, X, y, day)
    test = scoring.evaluate_testing_dataset(share, model, learner_name)
    if test is not None:
        metrics["test"] = test

    data = dump_model(model)
    checkpoint_sha = sha256_bytes(data)
    final = share.checkpoint(day)
    state_final = share.feature_state(day)
    state_tmp = write_temp(state_final, carried.state_bytes)
    faults.fault_point("before_state_rename")
    tmp = write_temp(final, data)
    faults.fault_point("before_checkpoint_rename")

    def check_and_publish() -> None:
        # Under the lineage lock: the record must name the dataset really trained on.
        now = sha256_file(dataset) if dataset.is_file() else "missing"
        if now != dataset_sha:
            raise InputChangedError(
                f"{dataset} changed while {day} was training (sha256 {dataset_sha[:12]}... "
                f"at the start, {now[:12]} now); nothing committed, a retry trains on the "
                f"content now on the share")
        if guard is not None:
            guard()
        # The state first: no entry names it until the commit, and a rerun of this day
        # writes it again (same inputs, same bytes).
        publish_temp(state_tmp, state_final)
        faults.fault_point("after_state")
        _keep_foreign_checkpoint(share, final, checkpoint_sha)
        publish_temp(tmp, final)
        faults.fault_point("after_checkpoint")

    entry = Entry(
        date=day, checkpoint=str(final.relative_to(share.root)),
        sha256=checkpoint_sha, parent_sha256=head.sha256 if head else None,
        dataset_sha256=dataset_sha, learner=learner_name, metrics=metrics,
        versions=library_versions(), gap_days=max(gap, 0),
        committed_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        feature_state_sha256=carried.state_sha256,
    )
    faults.fault_point("before_commit")
    try:
        lineage = commit(share, entry, head.sha256 if head else None,
                         publish=check_and_publish)
    finally:
        tmp.unlink(missing_ok=True)
        state_tmp.unlink(missing_ok=True)
    faults.fault_point("after_commit")
    global _committed
    with _committed_lock:
        _committed = (share.root, checkpoint_sha, model)
    write_reports(share, lineage)
    seconds = time.perf_counter() - started
    log.info("trained %s in %.2fs (checkpoint %s; features read %d days, %d bytes%s)", day,
             seconds, checkpoint_sha[:12], len(carried.days_read), carried.bytes_read,
             "" if carried.rebuilt is None else f"; state rebuilt: {carried.rebuilt}")
    return StepResult(day, StepStatus.TRAINED, checkpoint_sha, metrics, seconds,
                      entry.gap_days)



def _head_model(share: Share, head: Entry):
    """The head's model: the one this process's last step committed, else read from the file.

    Either way the file must hold the bytes the lineage names (a head changed or lost on
    the share stops the step as a load would). The kept model is the object those bytes
    were dumped from, and a load of them gives a model that trains to the same bytes
    (tests/unit/test_step.py), so skipping the parse changes no result.
    """
    global _committed
    with _committed_lock:  # taken by one step only, even with steps on threads
        kept, _committed = _committed, None
    path = share.root / head.checkpoint
    if kept is not None and kept[0] == share.root and kept[1] == head.sha256:
        verified_bytes(path, head.sha256)
        return kept[2]
    return load_checkpoint(path, head.sha256)


def _keep_foreign_checkpoint(share: Share, final, checkpoint_sha: str) -> None:
    """Never overwrite a checkpoint file this step did not write (caller holds the lock).

    The same bytes (a rerun after a kill between rename and commit) are replaced
    harmlessly. A different file the lineage names stops the step; one it does not name
    (left by a killed step of another learner or version) is renamed aside, kept for
    `fraudpipe fsck`.
    """
    if not final.is_file():
        return
    found = sha256_file(final)
    if found == checkpoint_sha:
        return
    relative = str(final.relative_to(share.root))
    if any(e.checkpoint == relative for e in Lineage.load(share).entries):
        raise LineageError(
            f"{final} is a committed checkpoint (sha256 {found[:12]}...) yet this step would "
            f"write another one there; not overwriting it. Check `fraudpipe lineage --storage "
            f"{share.root}` and repair with `fraudpipe lineage --repair`")
    aside = final.with_name(f"{final.stem}.orphan-{found[:12]}{final.suffix}")
    final.replace(aside)
    log.warning("%s was not on the lineage (sha256 %s...); kept as %s", final, found[:12],
                aside.name)
