"""Arrival scoring leaves a day to the step that is training it: the lock held by another
process (POSIX record locks are per process, so the holder must be a second process).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.unit.test_arrival_artifacts import D, arrived_share
from trainer.arrival import score_arrived_days
from trainer.share.layout import Share

pytestmark = pytest.mark.integration


@pytest.fixture
def share(tmp_path) -> Share:
    return arrived_share(tmp_path)


def test_a_day_whose_step_is_running_is_left_to_the_step(share: Share) -> None:
    # GIVEN another process holding 04-04's training lock as a running step does
    code = ("import sys; from trainer.share.locks import shared_lock; "
            f"lock = shared_lock({str(share.training_lock(D[3]))!r}); lock.__enter__(); "
            "print('locked', flush=True); sys.stdin.read()")
    step = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert step.stdout.readline().strip() == "locked"
        # WHEN the arrived days are scored
        result = score_arrived_days(share)
    finally:
        step.communicate("")
    # THEN 04-03 is scored and 04-04 is not: its step writes its scores
    assert [s["date"] for s in result.scored] == ["2018-04-03"]
    assert not share.scores(D[3]).exists()
