"""The worker against a real redis-server and the real step, in separate processes."""

from __future__ import annotations

import signal
import time

import pytest

from tests.chaos.harness import (
    check_invariant,
    kill_group,
    paused_pid,
    start_worker,
    wait_until,
    write_days,
)
from trainer.queue.settings import RedisSettings
from trainer.queue.work_queue import WorkQueue

pytestmark = pytest.mark.integration


@pytest.fixture
def queue(redis_url):
    return WorkQueue(RedisSettings.from_url(redis_url), lease_seconds=5, max_attempts=3)


def leased_by(queue, name):
    return [item.date for item in queue.stats().leased if item.holder == name]


def test_burst_worker_trains_every_day_once_in_date_order(tmp_path, redis_url, queue):
    # GIVEN six days pushed out of order, twice, and one through the sample's list
    root = tmp_path / "share"
    days = write_days(root, 6)
    queue.push(days[::-1])
    queue.push(days[2:4])
    queue.redis.rpush("datasets", "datasets/training/2018-04-02.pkl")
    # WHEN one worker drains it in burst mode
    proc = start_worker(root, redis_url, tmp_path / "w.log", name="w", burst=True)
    assert proc.wait(timeout=180) == 0
    # THEN every day is on the chain once, oldest first
    verdict = check_invariant(root, queue, days, [tmp_path / "w.log"])
    from trainer.share.layout import Share
    from trainer.share.lineage import verify

    assert [e.date for e in verify(Share.at(root))] == days
    assert verdict.trained == 6 and verdict.executions == 6


def test_always_failing_day_is_dead_after_exactly_max_attempts(tmp_path, redis_url, queue):
    root = tmp_path / "share"
    days = write_days(root, 5)
    from trainer.share.layout import Share

    # the checkpoint path of day 3 is a directory: the step fails there every time
    Share.at(root).checkpoint(days[2]).mkdir(parents=True)
    queue.push(days)
    log = tmp_path / "w.log"
    proc = start_worker(root, redis_url, log, name="w", burst=True)
    assert proc.wait(timeout=180) == 0
    verdict = check_invariant(root, queue, days, [log])
    [(item, reason, attempts)] = queue.dead()
    assert item == days[2].isoformat() and attempts == 3
    assert "Is a directory" in reason
    assert verdict.trained == 4 and verdict.executions == 4 + 3


def test_invalid_dataset_is_dead_lettered_at_once(tmp_path, redis_url, queue):
    root = tmp_path / "share"
    days = write_days(root, 3)
    queue.push(days + [days[-1].replace(day=days[-1].day + 1)])  # a day never ingested
    proc = start_worker(root, redis_url, tmp_path / "w.log", name="w", burst=True)
    assert proc.wait(timeout=180) == 0
    [(item, reason, attempts)] = queue.dead()
    assert item == "2018-04-04" and attempts == 1 and "DatasetValidationError" in reason
    check_invariant(root, queue, days + [dt_of(item)])


def dt_of(text):
    import datetime as dt

    return dt.date.fromisoformat(text)


def test_sigterm_exits_within_10s_and_next_worker_leases_at_once(tmp_path, redis_url, queue):
    root = tmp_path / "share"
    days = write_days(root, 3)
    queue.push(days)
    log_a = tmp_path / "a.log"
    # a lease of 300 s: only a release (not the reaper) can hand the day on quickly
    first = start_worker(root, redis_url, log_a, name="a", lease_seconds=300)
    wait_until(lambda: leased_by(queue, "a"), 60, what="worker a to lease")
    taken = leased_by(queue, "a")[0]
    # WHEN Spot preemption sends SIGTERM mid-step
    sent = time.monotonic()
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=15)
    stopped_in = time.monotonic() - sent
    # THEN it stopped within 10 s and gave the lease back without counting an attempt
    assert stopped_in < 10
    stats = queue.stats()
    assert not stats.leased and stats.pending + stats.done == 3
    lease = queue.lease("b")
    assert lease is not None and lease.attempt == 1
    if "interrupted, lease given back" in log_a.read_text():
        assert lease.date == taken
    queue.release(lease)
    second = start_worker(root, redis_url, tmp_path / "b.log", name="b", lease_seconds=300,
                          burst=True)
    assert second.wait(timeout=120) == 0
    check_invariant(root, queue, days)


def test_paused_holder_is_fenced_and_removes_nothing(tmp_path, redis_url, queue):
    root = tmp_path / "share"
    days = write_days(root, 4)
    queue.push(days)
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    # GIVEN worker a's step held just before its commit (a fault point), then worker a
    # paused as well (SIGSTOP of worker and step), so its heartbeat stops
    first = start_worker(root, redis_url, log_a, name="a", lease_seconds=1.5,
                         fault="before_commit:pause")
    # (the step stopped itself, not only said so, before the whole group is stopped: a
    # SIGCONT reaching it before its own SIGSTOP would leave it stopped for good)
    wait_until(lambda: paused_pid(log_a.read_text(), "before_commit"), 120,
               what="a's step to stop at its commit")
    kill_group(first, signal.SIGSTOP)
    # WHEN its lease expires and worker b trains everything
    second = start_worker(root, redis_url, log_b, name="b", lease_seconds=1.5)
    wait_until(lambda: queue.stats().done == 4, 120, what="worker b to finish")
    # THEN a, resumed, can neither commit nor complete, and b's work stands
    kill_group(first, signal.SIGCONT)
    fenced = ("rejected", "lease lost", "LeaseLostError")
    wait_until(lambda: any(word in log_a.read_text() for word in fenced), 60,
               what="worker a to be fenced")
    for proc in (first, second):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    verdict = check_invariant(root, queue, days, [log_a, log_b])
    assert verdict.trained == 4 and queue.stats().done == 4


def test_stalled_heartbeat_redelivers_and_the_day_is_trained_once(tmp_path, redis_url, queue):
    # the worker (parent) stops but its step keeps running: a step longer than the lease
    root = tmp_path / "share"
    days = write_days(root, 3)
    queue.push(days)
    queue.push(days)
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    first = start_worker(root, redis_url, log_a, name="a", lease_seconds=1)
    wait_until(lambda: leased_by(queue, "a"), 60, interval=0.01, what="worker a to lease")
    first.send_signal(signal.SIGSTOP)  # the parent only: heartbeat stops, step continues
    second = start_worker(root, redis_url, log_b, name="b", lease_seconds=1, burst=True)
    assert second.wait(timeout=120) == 0
    first.send_signal(signal.SIGCONT)
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=15)
    verdict = check_invariant(root, queue, days, [log_a, log_b])
    assert verdict.trained == 3 and verdict.executions >= 4  # a re-delivery happened


def test_redis_killed_and_restarted_with_aof_mid_run(tmp_path, aof_redis_server):
    url = aof_redis_server.url
    queue = WorkQueue(RedisSettings.from_url(url), lease_seconds=3, max_attempts=5)
    root = tmp_path / "share"
    days = write_days(root, 8)
    queue.push(days)
    logs = [tmp_path / f"w{i}.log" for i in range(2)]
    workers = [start_worker(root, url, log, name=f"w{i}", lease_seconds=3, max_attempts=5)
               for i, log in enumerate(logs)]
    wait_until(lambda: queue.stats().done >= 2, 120, what="two days done")
    # WHEN redis-server is killed -9 mid-run and comes back a little later from its AOF
    aof_redis_server.kill()
    time.sleep(2)
    aof_redis_server.start()
    queue = WorkQueue(RedisSettings.from_url(url), lease_seconds=3, max_attempts=5)
    wait_until(lambda: queue.stats().done + queue.stats().dead >= 8, 180, interval=0.3,
               what="the run to finish after the restart")
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    verdict = check_invariant(root, queue, days, logs)
    assert verdict.trained == 8
