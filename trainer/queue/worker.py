"""The worker: lease the next day, train it under a heartbeat, complete; shaped like RQ's work().

This is the one lease loop: `fraudpipe worker` runs it, and so does the train flow's local
backend (`flows/drain.py`), which overrides only how a step runs (`Worker.run_step`), as
RQ's SimpleWorker runs jobs in-process where its Worker forks. Leasing, the heartbeat,
fencing, dead letters and settling are here and in `trainer.queue.lease`, once.

`Worker` runs each step in a forked child process. The parent keeps the lease alive (a heartbeat
thread renews it every `lease_seconds / 3`) and watches the child. Why a child: a step
spends most of its time inside pandas / scikit-learn C code, where a Python signal
handler cannot run, so raising out of the step on SIGTERM could take longer than the
~15 s of grace a Spot pod gets. Killing the child is immediate, and it is safe: the step
writes every file to a temporary name and renames it, and moves the head only by
compare-and-swap under the lineage lock, so a step killed anywhere leaves nothing
half-written as the head. The child gets SIGKILL if the parent dies (PR_SET_PDEATHSIG),
so a kill -9 of the worker kills its step too and the lease simply expires.

Serialisation: the queue hands out one lease at a time (`WorkQueue(serial=True)`), so two
workers never train consecutive days in parallel. Under lease expiry (a paused or
partitioned worker whose date was re-leased) two steps can overlap; the lineage still
cannot fork because the step calls `queue.assert_holds(lease)` under the lineage lock
right before it moves the head, and the head moves only by compare-and-swap on the
parent it started from: whichever commits second gets `LeaseLostError` or
`HeadMovedError` and nothing of its is committed.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from trainer.errors import LeaseLostError, PermanentError, QueueConnectionError
from trainer.queue.lease import Heartbeat, Outcome, release_lease, settle_lease
from trainer.queue.settings import RedisSettings
from trainer.queue.work_queue import Lease, WorkQueue
from trainer.share.layout import Share, open_share

log = logging.getLogger(__name__)

#: How often the idle loop asks for work, and how long Redis may be unreachable before a
#: completion is given up (the lease then expires and the lineage keeps the truth).
POLL_SECONDS = 1.0
REDIS_RETRY_SECONDS = 60.0


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no orphaned steps)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the lease expiry still bounds an orphan's effect
        pass


def _step_in_child(conn, parent_pid: int, root: str, settings_json: str, lease: Lease,
                   learner: str | None) -> None:
    """Child process body: run the step with the lease guard, send the result as JSON."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    from trainer.step import run_step

    try:
        settings = RedisSettings.model_validate_json(settings_json)
        queue = WorkQueue(settings, client=settings.client(check=False))
        result = run_step(Share.at(root), lease.date, learner=learner,
                          guard=lambda: queue.assert_holds(lease))
        message = {"ok": True, "result": result.to_json()}
    except Exception as exc:  # noqa: BLE001 - every error is reported to the parent
        report = StepReport.of_error(exc)
        message = {"ok": False, "kind": report.kind, "message": str(exc),
                   "permanent": report.permanent, "lost": report.lost}
    conn.send_bytes(json.dumps(message, default=str).encode())
    conn.close()


@dataclass(frozen=True)
class StepReport:
    """How one step ended, as `Worker.run_step` reports it for settling."""

    result: dict | None = None
    """`StepResult.to_json()` when the step succeeded (its status: trained or skipped)."""
    failure: str = ""
    """Why it failed, as the dead-letter entry keeps it (when `result` is None)."""
    kind: str = ""
    """The error's class name ("" when it succeeded or the step process died)."""
    permanent: bool = False
    """Dead-letter at once: no retry can help."""
    lost: bool = False
    """The step found its lease held by someone else (`LeaseLostError`)."""

    @classmethod
    def of_error(cls, exc: BaseException, failure: str | None = None) -> StepReport:
        """The report of a step that raised `exc` (`failure`: the text, default "kind: exc")."""
        return cls(failure=failure or f"{type(exc).__name__}: {exc}", kind=type(exc).__name__,
                   permanent=isinstance(exc, PermanentError),
                   lost=isinstance(exc, LeaseLostError))


class Worker:
    """Drains a `WorkQueue` into the lineage on `share`, one day at a time.

    Subclasses change how one step runs by overriding `run_step` (in a child process
    here); the loop, the heartbeat and the settling stay the same.

    Args:
        share: the storage root.
        queue: the dataset queue (its `lease_seconds` sets the heartbeat period).
        name: holder name shown in stats; default host:pid.
        learner: learner for a new chain (None: the default).
    """

    #: Whether `work` turns SIGTERM/SIGINT into a stop request while it runs (a worker
    #: process); a worker inside another program (a flow) leaves the signals to it.
    handles_signals = True

    def __init__(self, share: Share, queue: WorkQueue, *, name: str | None = None,
                 learner: str | None = None) -> None:
        self.share, self.queue, self.learner = share, queue, learner
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._context = multiprocessing.get_context("fork")

    def request_stop(self, signum: int | None = None, _frame: object = None) -> None:
        """Stop soon: a running step is killed and its lease given back."""
        if signum is not None:
            log.info("worker %s: got signal %d, stopping", self.name, signum)
        self._stop.set()

    def work(self, *, burst: bool = False, max_jobs: int | None = None,
             max_idle_seconds: float | None = None,
             on_outcome: Callable[[Outcome], None] | None = None) -> int:
        """Lease and train until stopped.

        Args:
            burst: exit once nothing is pending and nothing is leased (the sample's Job).
            max_jobs: exit after this many leases.
            max_idle_seconds: exit after this long without work.
            on_outcome: called after each lease is settled.

        Returns:
            The number of leases handled.
        """
        # The handlers are this call's, not the process's: a caller that runs a worker
        # in-process (a test, a local flow) gets its own back when `work` returns, or a
        # later SIGTERM would only set a stopped worker's flag.
        previous = {}
        if self.handles_signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self.request_stop)
        # Import the step (pandas, scikit-learn, skops: seconds) once, before the first
        # fork, so each forked step starts at once.
        import trainer.step  # noqa: F401

        jobs, idle_since = 0, time.monotonic()
        log.info("worker %s on %s, queue %s", self.name, self.share.root,
                 self.queue.settings.url_for_display())
        try:
            while not self._stop.is_set() and (max_jobs is None or jobs < max_jobs):
                # Before every lease: a share unmounted mid-run must not dead-letter the queue.
                open_share(self.share.root)
                try:
                    lease = self.queue.lease(self.name)
                except QueueConnectionError as exc:
                    log.warning("cannot lease: %s", exc)
                    self._stop.wait(POLL_SECONDS)
                    continue
                if lease is None:
                    if burst and self._quiet():
                        log.info("queue is empty, burst mode: exiting")
                        break
                    if max_idle_seconds is not None and \
                            time.monotonic() - idle_since > max_idle_seconds:
                        self.idle_timeout(max_idle_seconds)
                        break
                    self._stop.wait(POLL_SECONDS)
                    continue
                outcome = self.execute(lease)
                jobs += 1
                idle_since = time.monotonic()
                if on_outcome is not None:
                    on_outcome(outcome)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.teardown()
        return jobs

    def _quiet(self) -> bool:
        try:
            stats = self.queue.stats()
        except QueueConnectionError:
            return False
        return stats.pending == 0 and not stats.leased

    def teardown(self) -> None:
        """Called once when `work` returns."""
        log.info("worker %s: stopped", self.name)

    def idle_timeout(self, seconds: float) -> None:
        """Called when `work` gives up after `seconds` without a lease."""
        log.info("idle for %.0fs: exiting", seconds)

    def execute(self, lease: Lease) -> Outcome:
        """Run the step for `lease` under a heartbeat, then settle the lease."""
        log.info("step %s: start (attempt %d, lease %s)", lease.date, lease.attempt,
                 lease.token[:8])
        heartbeat = Heartbeat(self.queue, lease, self.queue.lease_seconds / 3)
        heartbeat.start()
        try:
            report = self.run_step(lease, heartbeat.lost)
        finally:
            heartbeat.stop()
        if heartbeat.lost.is_set() and (report is None or report.result is None):
            return settle_lease(self.queue, lease, lost=True,
                                failure="lease lost while training; step abandoned")
        if report is None:
            # The stop request ends the retrying at once: a stopping pod has seconds left.
            return release_lease(self.queue, lease, redis_retry_seconds=REDIS_RETRY_SECONDS,
                                 stop=self._stop)
        return self.settle(lease, report)

    def run_step(self, lease: Lease, lost: threading.Event) -> StepReport | None:
        """Run the day's step in a child process; None when stopped before it reported.

        The child is killed as soon as a stop is requested or `lost` is set (the heartbeat
        found the lease taken over): a step in C code cannot be interrupted otherwise.
        """
        receiver, sender = self._context.Pipe(duplex=False)
        child = self._context.Process(
            target=_step_in_child, name=f"step-{lease.date}",
            args=(sender, os.getpid(), str(self.share.root),
                  _settings_json(self.queue.settings), lease, self.learner))
        child.start()
        sender.close()
        message = None
        try:
            while message is None and child.exitcode is None:
                ready = multiprocessing.connection.wait([receiver, child.sentinel], 0.2)
                if receiver in ready:
                    try:
                        message = json.loads(receiver.recv_bytes())
                    except EOFError:
                        child.join()
                if self._stop.is_set() or lost.is_set():
                    child.kill()
                    child.join()
                    break
            child.join()
        finally:
            receiver.close()
        if message is None:
            if self._stop.is_set() or lost.is_set():
                return None
            exitcode = child.exitcode
            how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else \
                f"exit code {exitcode}"
            return StepReport(failure=f"step process for {lease.date} died ({how}) before "
                                      "reporting a result")
        if message["ok"]:
            return StepReport(result=message["result"])
        return StepReport(failure=f"{message['kind']}: {message['message']}",
                          kind=message["kind"], permanent=message["permanent"],
                          lost=message["lost"])

    def settle(self, lease: Lease, report: StepReport) -> Outcome:
        """Complete or fail `lease` as `report` says (fenced by the lease's token)."""
        if report.result is not None:
            outcome = settle_lease(self.queue, lease, status=report.result["status"],
                                   redis_retry_seconds=REDIS_RETRY_SECONDS, stop=self._stop)
            return dataclasses.replace(outcome, result=report.result)
        if report.kind == "OutOfOrderError":  # dead-lettered, but loudly: it needs a replay
            log.warning("step %s needs a replay, not a retry: %s", lease.date, report.failure)
        return settle_lease(self.queue, lease, failure=report.failure,
                            permanent=report.permanent, lost=report.lost,
                            redis_retry_seconds=REDIS_RETRY_SECONDS, stop=self._stop)


def _settings_json(settings: RedisSettings) -> str:
    """The settings for the child, password included (it never leaves the process tree)."""
    data = settings.model_dump(mode="json")
    if settings.password is not None:
        data["password"] = settings.password.get_secret_value()
    return json.dumps(data)
