"""A step SIGKILLed at every write it makes leaves the share consistent, and its rerun
gives the uninterrupted run's checkpoints (the step runs in its own process, killed by
its FRAUDPIPE_FAULT point).
"""

import datetime as dt
import os
import shutil
import subprocess
import sys

import pytest

from tests.shares import simulated_share
from trainer import faults
from trainer.backlog import train_all
from trainer.share.files import sha256_file
from trainer.share.layout import Share
from trainer.share.lineage import Lineage, verify
from trainer.step import run_step

pytestmark = pytest.mark.integration

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(5)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Five days trained without interruption: the lineage every other run must match."""
    share = simulated_share(tmp_path_factory.mktemp("ref"), 5)
    train_all(share)
    return share


@pytest.fixture(scope="module")
def four_trained(tmp_path_factory) -> Share:
    """Five days ingested, the first four trained (built once; each test takes a copy)."""
    share = simulated_share(tmp_path_factory.mktemp("four"), 5)
    train_all(share, through=D[3])
    return share


@pytest.mark.parametrize("point", faults.POINTS)
def test_a_step_killed_at_any_write_leaves_the_share_consistent(tmp_path, reference,
                                                                four_trained, point):
    # GIVEN four days trained
    share = Share.at(shutil.copytree(four_trained.root, tmp_path / "share"))
    head_before = Lineage.load(share).head
    # WHEN the fifth day's step is SIGKILLed at `point`
    env = dict(os.environ, FRAUDPIPE_FAULT=point)
    proc = subprocess.run([sys.executable, "-m", "trainer.cli", "step", "--storage",
                           str(share.root), "--dataset", D[4].isoformat()],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    # THEN the head still verifies, its feature state too, and nothing partial sits under
    # a final name
    chain = verify(share)
    committed = point == "after_commit"
    assert (Lineage.load(share).head != head_before) == committed
    head = Lineage.load(share).head_entry
    assert sha256_file(share.feature_state(head.date)) == head.feature_state_sha256
    for path in share.output_dir.rglob("*"):
        if path.is_file() and not path.name.startswith("."):  # .tmp-* files and the lock
            assert path.stat().st_size > 0, path
    # AND running the step again completes it, with the uninterrupted run's checkpoint
    run_step(share, D[4])
    chain = verify(share)
    assert [e.sha256 for e in chain] == [e.sha256 for e in verify(reference)]
    assert [e.feature_state_sha256 for e in chain] == [
        e.feature_state_sha256 for e in verify(reference)]
    assert len(share.report_txt.read_text().strip().split("\n\n")) == 5
