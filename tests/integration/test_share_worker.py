"""The share as the record, with a real redis-server: the worker never dead-letters a queue
because the share is missing, and says a late day needs a replay."""

from __future__ import annotations

import signal

import pytest

from tests.chaos.harness import start_worker, write_days
from trainer.errors import NotAShareError
from trainer.queue.settings import RedisSettings
from trainer.queue.work_queue import WorkQueue
from trainer.queue.worker import Worker
from trainer.share.layout import Share
from trainer.step import run_step

pytestmark = pytest.mark.integration


@pytest.fixture
def queue(redis_url):
    return WorkQueue(RedisSettings.from_url(redis_url), lease_seconds=5, max_attempts=3)


def test_a_worker_on_an_empty_mount_leases_nothing(tmp_path, redis_url, queue):
    days = write_days(tmp_path / "share", 3)
    queue.push(days)
    # GIVEN an empty directory where the share should be mounted
    empty = tmp_path / "mnt"
    empty.mkdir()
    # WHEN a worker starts on it
    log = tmp_path / "w.log"
    proc = start_worker(empty, redis_url, log, name="w", burst=True)
    # THEN it exits 3 naming the path, and the queue is as it was: nothing dead-lettered
    assert proc.wait(timeout=120) == 3, log.read_text()
    assert "is not a fraudpipe share" in log.read_text()
    stats = queue.stats()
    assert (stats.pending, stats.dead, stats.leased) == (3, 0, [])


def test_a_share_unmounted_while_the_worker_runs_stops_it_before_the_next_lease(
        tmp_path, queue):
    root = tmp_path / "share"
    days = write_days(root, 3)
    queue.push(days)
    share = Share.at(root)
    # GIVEN the mount gone after the worker was started (the marker is no longer there)
    share.marker.unlink()
    worker = Worker(share, queue, name="w")
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    # WHEN it looks for work, THEN it stops before leasing anything
    with pytest.raises(NotAShareError):
        worker.work(burst=True)
    assert queue.stats().pending == 3 and queue.stats().dead == 0
    # AND the process' own signal handlers are back (a stopped worker's handler left in
    # place swallowed a later SIGTERM: a forked pool in another test never exited)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers


def test_a_late_day_in_the_queue_is_reported_as_needing_a_replay(tmp_path, redis_url, queue):
    root = tmp_path / "share"
    days = write_days(root, 3)
    share = Share.at(root)
    # GIVEN days 1 and 3 trained, and day 2 queued afterwards (a late day)
    run_step(share, days[0])
    run_step(share, days[2])
    queue.push([days[1]])
    log = tmp_path / "w.log"
    proc = start_worker(root, redis_url, log, name="w", burst=True)
    assert proc.wait(timeout=120) == 0, log.read_text()
    # THEN the worker says it needs a replay, with the command, and so does the dead entry
    command = f"fraudpipe replay --from {days[0]} --storage {share.root}"
    assert "needs a replay" in log.read_text() and command in log.read_text()
    [(item, reason, attempts)] = queue.dead()
    assert item == days[1].isoformat() and command in reason and attempts == 1
