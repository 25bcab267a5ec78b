"""Opening a share while (or after) the first commit of its chain is in flight.

A step publishes its checkpoint and then writes `lineage.json`, both under the lineage
lock. A second worker opening the share in between must wait for that commit, not report
the chain's record as lost (it used to exit 4 with LineageMissingError).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest

from trainer.errors import LineageMissingError
from trainer.share.files import atomic_write_bytes, sha256_bytes
from trainer.share.layout import create_share, open_share
from trainer.share.lineage import Entry, Lineage, commit
from trainer.share.locks import file_lock


def first_commit_in_flight(root: Path):
    share, _ = create_share(root, "test")
    share.output_dir.mkdir(parents=True, exist_ok=True)
    (share.output_dir / "model_cpt_2018-04-01.skops").write_bytes(b"published checkpoint")
    return share


def test_opening_waits_for_the_first_commit_in_flight(tmp_path: Path):
    # GIVEN a step that holds the lineage lock, its checkpoint published, lineage not written
    share = first_commit_in_flight(tmp_path / "share")
    outcome: list[object] = []

    def open_it() -> None:
        try:
            outcome.append(open_share(share.root))
        except Exception as exc:  # the test reports what the opener met
            outcome.append(exc)

    with file_lock(share.lineage_lock):
        opener = threading.Thread(target=open_it)
        opener.start()
        # WHEN another worker opens the share meanwhile
        opener.join(0.3)
        # THEN it waits (the lock is held, so it cannot have decided yet)
        assert opener.is_alive() and outcome == []
        # ... and once the commit writes lineage.json and releases the lock, it opens the share
        share.lineage.write_text(json.dumps({"head": None, "entries": []}))
    opener.join(30)
    assert not opener.is_alive()
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert outcome[0].root == share.root


def test_checkpoints_without_lineage_after_the_lock_are_a_lost_record(tmp_path: Path):
    # GIVEN checkpoints and no lineage.json, and nobody committing
    share = first_commit_in_flight(tmp_path / "share")
    # WHEN the share is opened THEN the record is reported lost, naming the repair
    with pytest.raises(LineageMissingError, match="lineage --repair"):
        open_share(share.root)


class KilledMidCommit(BaseException):
    """Stands for kill -9: nothing after it in the commit runs (the kernel drops the lock)."""


def test_a_kill_inside_the_first_commit_leaves_a_share_that_opens(tmp_path: Path):
    # GIVEN a share whose chain has never committed
    share, _ = create_share(tmp_path / "share", "test")
    data = b"first checkpoint"
    path = share.checkpoint(dt.date(2018, 4, 1))
    entry = Entry(date="2018-04-01", checkpoint=str(path.relative_to(share.root)),
                  sha256=sha256_bytes(data), parent_sha256=None, dataset_sha256="d" * 64,
                  learner="sgd")

    def publish_then_die() -> None:
        atomic_write_bytes(path, data)
        raise KilledMidCommit

    # WHEN the worker dies after publishing its checkpoint, before the entry is recorded
    with pytest.raises(KilledMidCommit):
        commit(share, entry, None, publish=publish_then_die)
    # THEN the next worker opens the share (no LineageMissingError) and sees no head,
    # so it trains the first day again and its commit replaces the uncommitted file
    assert path.is_file()
    reopened = open_share(share.root)
    assert Lineage.load(reopened).head is None
    commit(reopened, entry, None, publish=lambda: atomic_write_bytes(path, data))
    assert Lineage.load(reopened).head == entry.sha256
