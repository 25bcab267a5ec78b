"""Helpers of the worker and chaos tests: tiny datasets, worker processes, the invariant.

The invariant every worker test asserts: every pushed dataset is on the lineage
exactly once or in the dead-letter list with a reason; none lost; no duplicate or forked
lineage entry; every checkpoint verifies; when quiet, nothing is leased or pending.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from trainer.faults import PAUSED
from trainer.queue.work_queue import WorkQueue
from trainer.share.files import sha256_file
from trainer.share.layout import Share, create_share
from trainer.share.lineage import Lineage, verify

START = dt.date(2018, 4, 1)
REPO = Path(__file__).resolve().parents[2]


def write_days(root: Path, days: int, *, start: dt.date = START, customers: int = 60,
               terminals: int = 120, seed: int = 7) -> list[dt.date]:
    """Simulate `days` small days (about 100 rows each) straight onto the share."""
    from trainer.data.simulator import simulate

    share, _ = create_share(root, "tests.chaos.harness")  # as `fraudpipe ingest` would
    share.training_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for day, frame in simulate(start, days, customers=customers, terminals=terminals, seed=seed):
        frame.to_parquet(share.training_dataset(day), index=False)
        out.append(day)
    return out


def start_worker(root: Path, redis_url: str, log: Path, *, name: str, lease_seconds: float = 5,
                 max_attempts: int = 3, burst: bool = False, fault: str | None = None,
                 extra: list[str] | None = None) -> subprocess.Popen[bytes]:
    """`fraudpipe worker` in its own session (so a test can signal its whole group)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("FRAUDPIPE_FAULT", None)
    if fault:
        env["FRAUDPIPE_FAULT"] = fault
    args = [sys.executable, "-m", "trainer.cli", "worker", "--storage", str(root),
            "--redis-url", redis_url, "--name", name, "--lease-seconds", str(lease_seconds),
            "--max-attempts", str(max_attempts), *(["--burst"] if burst else []), *(extra or [])]
    handle = open(log, "ab")
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the worker and its step child (one process group)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def is_stopped(pid: int) -> bool:
    """True when process `pid` is stopped by a signal (state T in /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] == "T"  # the name in parentheses may hold spaces


def paused_pid(log_text: str, point: str) -> int | None:
    """The pid of the process that said it paused at fault `point`, once it is stopped.

    The fault point prints its line just before stopping itself, so a SIGCONT sent on
    seeing the line alone could come first and leave the process stopped for good.
    """
    found = re.search(re.escape(PAUSED.format(point=point)) + r" pid (\d+)", log_text)
    if found is None:
        return None
    pid = int(found.group(1))
    return pid if is_stopped(pid) else None


@dataclass
class Verdict:
    """Figures of one run, checked by `check_invariant`."""

    trained: int
    dead: int
    lost: int
    duplicated: int
    forked: int
    executions: int = 0


def check_invariant(root: Path, queue: WorkQueue, pushed: list[dt.date],
                    logs: list[Path] | None = None) -> Verdict:
    """Assert the issue's invariant on a quiet queue and return the run's figures."""
    share = Share.at(root)
    chain = verify(share)  # every link and every checkpoint's sha256
    lineage = Lineage.load(share)
    counts = Counter(entry.date for entry in chain)
    duplicated = sum(n - 1 for n in counts.values())
    # a fork: an entry off the active chain that nobody superseded on purpose
    on_chain = {entry.sha256 for entry in chain}
    forked = sum(1 for e in lineage.entries if e.sha256 not in on_chain and e.status == "active")
    dead = {item: (reason, attempts) for item, reason, attempts in queue.dead()}
    trained = set(counts)
    lost = [d for d in pushed if d not in trained and d.isoformat() not in dead]
    both = [d for d in pushed if d in trained and d.isoformat() in dead]
    stats = queue.stats()
    assert duplicated == 0, f"duplicated lineage entries: {counts.most_common(3)}"
    assert forked == 0, "forked lineage"
    assert not lost, f"lost datasets: {lost}"
    assert not both, f"trained and dead-lettered: {both}"
    assert all(reason for reason, _ in dead.values()), f"dead entry without a reason: {dead}"
    # the head's feature state is the one its entry records (kills at the state write too)
    head = lineage.head_entry
    if head is not None:
        assert sha256_file(share.feature_state(head.date)) == head.feature_state_sha256, (
            f"feature state of the head {head.date} does not match its entry")
    assert stats.pending == 0 and not stats.leased, f"queue not quiet: {stats}"
    executions = 0
    for log in logs or []:
        executions += log.read_text(errors="replace").count(": start (attempt")
    return Verdict(trained=len(trained), dead=len(dead), lost=len(lost),
                   duplicated=duplicated, forked=forked, executions=executions)


#: Crash points of the step (trainer.faults) hit at random in every chaos worker.
CHAOS_FAULTS = ("before_checkpoint_rename:0.08,after_state:0.08,after_checkpoint:0.08,"
                "after_commit:0.08")


@dataclass
class ChaosFigures:
    """What a chaos run did and what it left."""

    datasets: int
    workers: int
    external_kills: int
    kills_holding_a_lease: int
    """External kills that hit the worker holding the lease (mid-step)."""
    fault_kills: int
    executions: int
    trained: int
    lost: int
    duplicated: int
    forked: int
    dead: int
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "kills": self.external_kills + self.fault_kills}


#: A drain fails when no dataset finished for this long: slow is fine, stuck is not.
STALL_SECONDS = 180.0


def _wait_for_drain(queue: WorkQueue, datasets: int, logs: list[Path], *, cap: float) -> None:
    """Wait until every dataset is done or dead and nothing is leased or pending.

    The limit is progress, not speed: a loaded machine may take many times the usual time,
    so the wait fails only when no dataset finished for `STALL_SECONDS` (or at the `cap`
    deadline, a monotonic time), and then shows the newest worker logs.
    """
    finished, last_progress = -1, time.monotonic()
    while True:
        stats = queue.stats()
        if stats.done + stats.dead >= datasets and not stats.leased and stats.pending == 0:
            return
        now = time.monotonic()
        if stats.done + stats.dead > finished:
            finished, last_progress = stats.done + stats.dead, now
        if now - last_progress > STALL_SECONDS or now > cap:
            tails = "\n".join(f"--- {log.name}\n" + "\n".join(
                log.read_text(errors="replace").splitlines()[-8:]) for log in logs[-3:])
            raise AssertionError(
                f"the chaos run did not drain: {finished} of {datasets} finished, "
                f"{stats.pending} pending, {len(stats.leased)} leased, no progress for "
                f"{now - last_progress:.0f} s\n{tails}")
        time.sleep(0.5)


def run_chaos(tmp: Path, redis_url: str, *, datasets: int, kills: int, workers: int = 3,
              seed: int = 0, lease_seconds: float = 2.0, timeout: float = 900) -> ChaosFigures:
    """Train `datasets` days with `workers` workers while killing them with -9 at random.

    `kills` workers are killed from outside (kill -9 of the worker's process group, mostly
    the one holding the lease, so mid-step) and restarted; in addition every step may
    SIGKILL itself inside the checkpoint write, between checkpoint and lineage commit, or
    right after the commit (`CHAOS_FAULTS`). Then the run is let finish and the invariant
    is checked.
    """
    import random

    from trainer.queue.settings import RedisSettings

    rng = random.Random(seed)
    started = time.monotonic()
    root = tmp / "share"
    days = write_days(root, datasets)
    queue = WorkQueue(RedisSettings.from_url(redis_url), lease_seconds=lease_seconds,
                      max_attempts=1000)
    queue.push(rng.sample(days, len(days)))
    logs: list[Path] = []
    procs: dict[str, subprocess.Popen[bytes]] = {}
    generation = Counter()

    def spawn(slot: str) -> None:
        generation[slot] += 1
        log = tmp / f"{slot}-{generation[slot]}.log"
        logs.append(log)
        procs[slot] = start_worker(root, redis_url, log, name=f"{slot}-{generation[slot]}",
                                   lease_seconds=lease_seconds, max_attempts=1000,
                                   fault=CHAOS_FAULTS)

    slots = [f"w{i}" for i in range(workers)]

    def live_names() -> set[str]:
        return {f"{slot}-{generation[slot]}" for slot in slots}

    for slot in slots:
        spawn(slot)
    external = mid_step = 0
    try:
        while external < kills and time.monotonic() - started < timeout:
            # mostly: wait for a step to start, let it run a random fraction of a step
            # (~0.5 s here), kill its worker; sometimes: kill any worker, idle or not
            slot = rng.choice(slots)
            if rng.random() < 0.85 and queue.stats().done < datasets:
                try:
                    holder = wait_until(lambda: [i for i in queue.stats().leased
                                                 if i.holder in live_names()],
                                        30, interval=0.02, what="a live lease")[0].holder
                    slot = holder.rsplit("-", 1)[0]
                except AssertionError:
                    pass
            time.sleep(rng.uniform(0.0, 0.6))
            if f"{slot}-{generation[slot]}" in {i.holder for i in queue.stats().leased}:
                mid_step += 1
            kill_group(procs[slot])
            procs[slot].wait()
            external += 1
            spawn(slot)
        _wait_for_drain(queue, datasets, logs, cap=started + 4 * timeout)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill_group(proc)
    verdict = check_invariant(root, queue, days, logs)
    fault_kills = sum(log.read_text(errors="replace").count("died (signal 9)") for log in logs)
    return ChaosFigures(
        datasets=datasets, workers=workers, external_kills=external,
        kills_holding_a_lease=mid_step, fault_kills=fault_kills,
        executions=verdict.executions, trained=verdict.trained, lost=verdict.lost,
        duplicated=verdict.duplicated, forked=verdict.forked, dead=verdict.dead,
        seconds=round(time.monotonic() - started, 1))
