"""Holding a lease while its step runs, and settling it once the step is over.

The lease loop (`trainer.queue.worker.Worker.work`, which `fraudpipe worker` and the train
flow's local backend `flows/drain.py` both run) leases a day, keeps the lease alive with a
`Heartbeat` while the day's step runs, then calls `settle_lease`: complete it, fail it
(requeue or dead-letter) or leave it to the holder that took it over. A refusal of the
queue (`LeaseLostError`: the lease went to someone else) is an outcome, not an error: the
lineage, guarded by `WorkQueue.assert_holds`, already holds the truth.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from trainer.errors import LeaseLostError, QueueConnectionError
from trainer.queue.work_queue import Lease, WorkQueue

log = logging.getLogger(__name__)

T = TypeVar("T")


class LeaseStatus(StrEnum):
    """What became of one lease."""

    TRAINED = "trained"  # the step committed the day; the lease is completed
    SKIPPED = "skipped"  # the day was already on the chain; the lease is completed
    FAILED = "failed"  # the step failed; the day is pending again
    DEAD = "dead"  # the step failed for good; the day is dead-lettered
    RELEASED = "released"  # the worker stopped mid-step and gave the day back
    LOST = "lost"  # another holder owns the day now; nothing was settled by us


@dataclass(frozen=True)
class Outcome:
    """What became of one lease, and why (the error, or the queue's refusal)."""

    date: dt.date
    status: LeaseStatus
    detail: str = ""
    refused: str = ""
    """The queue's `LeaseLostError` text when completing or failing was refused."""
    result: dict | None = None
    """The step's `StepResult.to_json()` when it succeeded (set by the worker)."""


class Heartbeat(threading.Thread):
    """Renews a lease every `interval` seconds until stopped; notes when it is lost."""

    def __init__(self, queue: WorkQueue, lease: Lease, interval: float) -> None:
        super().__init__(name=f"heartbeat-{lease.date}", daemon=True)
        self.queue, self.lease, self.interval = queue, lease, interval
        self.lost = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        """Renew until stopped or until the queue says the lease is someone else's."""
        while not self._halt.wait(self.interval):
            try:
                self.lease = self.queue.renew(self.lease)
            except LeaseLostError as exc:
                log.warning("heartbeat: %s", exc)
                self.lost.set()
                return
            except QueueConnectionError as exc:  # Redis restarting: try again next beat
                log.warning("heartbeat for %s could not reach Redis: %s", self.lease.date, exc)

    def stop(self) -> None:
        """Stop renewing and wait for the thread to end."""
        self._halt.set()
        self.join()


def settle_lease(queue: WorkQueue, lease: Lease, *, status: str | None = None,
                 failure: str | None = None, permanent: bool = False, lost: bool = False,
                 redis_retry_seconds: float | None = None,
                 stop: threading.Event | None = None) -> Outcome:
    """Complete or fail `lease` after its step, as the step's outcome says.

    Args:
        queue: the queue the lease is from.
        lease: the settled lease.
        status: the step's status when it succeeded ("trained" or "skipped").
        failure: the error text when it failed (kept in the dead-letter entry).
        permanent: dead-letter at once instead of requeueing.
        lost: the lease went to another holder while the step ran; leave it alone.
        redis_retry_seconds: how long to retry while Redis is unreachable before giving
            up (the lease then expires); None raises `QueueConnectionError` at once.
        stop: a set event ends the retrying early.

    Returns:
        The outcome; `refused` holds the queue's refusal if the lease was lost meanwhile.
    """
    if lost:
        log.warning("step %s: not committed, lease lost: %s", lease.date, failure or "")
        return Outcome(lease.date, LeaseStatus.LOST, failure or "lease lost while training")
    if failure is None:
        _, refused = _call(lambda: queue.complete(lease), lease, "complete",
                           redis_retry_seconds, stop)
        log.info("step %s: %s", lease.date, status)
        return Outcome(lease.date, LeaseStatus(status or LeaseStatus.TRAINED), refused=refused)
    log.warning("step %s failed (attempt %d): %s", lease.date, lease.attempt, failure)
    dead, refused = _call(lambda: queue.fail(lease, failure, permanent=permanent), lease,
                          "fail", redis_retry_seconds, stop)
    return Outcome(lease.date, LeaseStatus.DEAD if dead else LeaseStatus.FAILED, failure,
                   refused=refused)


def release_lease(queue: WorkQueue, lease: Lease, *, redis_retry_seconds: float | None = None,
                  stop: threading.Event | None = None) -> Outcome:
    """Give `lease` back without counting an attempt (the worker is stopping mid-step)."""
    _call(lambda: queue.release(lease), lease, "release", redis_retry_seconds, stop)
    log.info("step %s: interrupted, lease given back", lease.date)
    return Outcome(lease.date, LeaseStatus.RELEASED)


def _call(action: Callable[[], T], lease: Lease, what: str, redis_retry_seconds: float | None,
          stop: threading.Event | None) -> tuple[T | None, str]:
    """Run a settling call; returns (its value, "") or (None, the refusal's text)."""
    deadline = time.monotonic() + (redis_retry_seconds or 0.0)
    while True:
        try:
            return action(), ""
        except LeaseLostError as exc:
            log.warning("%s of %s rejected: %s", what, lease.date, exc)
            return None, str(exc)
        except QueueConnectionError as exc:
            if redis_retry_seconds is None:
                raise
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                log.error("%s of %s abandoned, Redis unreachable (the lease will expire and "
                          "the lineage keeps the truth): %s", what, lease.date, exc)
                return None, ""
            time.sleep(0.5)
