"""WorkQueue against a real redis-server: ordering, idempotence, fencing, reaper, dead letters."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import pytest
import redis

from trainer.errors import LeaseLostError, QueueConnectionError
from trainer.queue.settings import RedisSettings
from trainer.queue.work_queue import WorkQueue

pytestmark = pytest.mark.integration

D = [dt.date(2018, 4, day) for day in range(1, 8)]


@pytest.fixture
def settings(redis_url):
    return RedisSettings.from_url(redis_url)


@pytest.fixture
def queue(settings):
    return WorkQueue(settings, lease_seconds=30, max_attempts=3)


def drain(queue, holder="w"):
    order = []
    while (lease := queue.lease(holder)) is not None:
        order.append(lease.date)
        queue.complete(lease)
    return order


def test_earliest_date_first_whatever_the_push_order(queue):
    assert queue.push([D[3], D[0], D[2]]) == [D[0], D[2], D[3]]
    queue.push([D[1]])
    assert drain(queue) == [D[0], D[1], D[2], D[3]]


def test_push_is_idempotent_for_pending_leased_and_done(queue):
    queue.push(D[:3])
    lease = queue.lease("w")
    queue.complete(lease)                 # D0 done
    second = queue.lease("w")             # D1 leased
    assert queue.push(D[:4]) == [D[3]]    # only the new date is added
    assert queue.stats().pending == 2     # D2, D3
    queue.complete(second)
    assert drain(queue) == [D[2], D[3]]


def test_serial_queue_hands_out_one_lease_at_a_time(queue):
    queue.push(D[:2])
    first = queue.lease("a")
    assert queue.lease("b") is None, "a second lease would let two workers fork the chain"
    queue.complete(first)
    assert queue.lease("b").date == D[1]


def test_deadline_comes_from_redis_time(queue, settings):
    queue.push([D[0]])
    seconds, micros = queue.redis.time()
    lease = queue.lease("w")
    redis_now = dt.datetime.fromtimestamp(seconds + micros / 1e6, tz=dt.UTC)
    assert abs((lease.deadline - redis_now).total_seconds() - 30) < 1
    assert lease.attempt == 1 and len(lease.token) == 32


def test_stale_holder_can_do_nothing_and_removes_nothing(settings):
    queue = WorkQueue(settings, lease_seconds=0.2, max_attempts=5)
    queue.push([D[0]])
    stale = queue.lease("old")
    time.sleep(0.3)
    fresh = queue.lease("new")            # reaper gives D0 to the new holder
    assert fresh.date == D[0] and fresh.attempt == 2
    for action in (queue.complete, queue.renew, queue.release, queue.assert_holds,
                   lambda lease: queue.fail(lease, "late")):
        with pytest.raises(LeaseLostError, match="held by new"):
            action(stale)
    stats = queue.stats()
    assert [(i.date.isoformat(), i.holder) for i in stats.leased] == [("2018-04-01", "new")]
    queue.assert_holds(fresh)
    queue.complete(fresh)
    assert queue.stats().done == 1


def test_renew_keeps_the_lease_past_its_first_deadline(settings):
    # renewals 1 s apart on a 1.5 s lease: a loaded machine may stretch each sleep by 0.5 s
    queue = WorkQueue(settings, lease_seconds=1.5)
    queue.push([D[0], D[1]])
    lease = first = queue.lease("w")
    for _ in range(2):
        time.sleep(1.0)
        lease = queue.renew(lease)
    assert lease.deadline > first.deadline + dt.timedelta(seconds=1.5)  # past the first one
    assert queue.lease("other") is None   # still held: nothing reaped
    queue.complete(lease)


def test_reaper_dead_letters_after_max_attempts_with_last_reason(settings):
    queue = WorkQueue(settings, lease_seconds=0.1, max_attempts=2)
    queue.push([D[0], D[1]])
    lease = queue.lease("w")
    assert not queue.fail(lease, "boom: disk full")  # attempt 1 -> requeued
    queue.lease("w")                                 # attempt 2, then it expires
    time.sleep(0.15)
    survivor = queue.lease("w")
    assert survivor.date == D[1]
    [(item, reason, attempts)] = queue.dead()
    assert item == "2018-04-01" and attempts == 2
    assert "lease expired" in reason and "boom: disk full" in reason


def test_fail_requeues_until_exactly_max_attempts(queue):
    queue.push([D[0]])
    outcomes = []
    for _ in range(3):
        lease = queue.lease("w")
        outcomes.append((lease.attempt, queue.fail(lease, f"error on {lease.attempt}")))
    assert outcomes == [(1, False), (2, False), (3, True)]
    assert queue.dead() == [("2018-04-01", "error on 3", 3)]
    assert queue.lease("w") is None


def test_permanent_failure_is_dead_at_once_and_retry_dead_requeues(queue):
    queue.push([D[0], D[1]])
    assert queue.fail(queue.lease("w"), "DatasetValidationError: column X", permanent=True)
    assert queue.dead() == [("2018-04-01", "DatasetValidationError: column X", 1)]
    assert queue.push([D[0]]) == []       # dead is not silently requeued by a push
    assert queue.retry_dead() == [D[0]]
    lease = queue.lease("w")
    assert (lease.date, lease.attempt) == (D[0], 1)


def test_release_gives_back_without_counting_an_attempt(queue):
    queue.push([D[0]])
    for _ in range(5):
        lease = queue.lease("w")
        assert lease.attempt == 1
        queue.release(lease)
    assert queue.stats().pending == 1


def test_sample_rpush_items_are_adopted_in_date_order(queue):
    # the GKE sample: redis-cli rpush datasets datasets/training/2018-04-0N.pkl ...
    queue.redis.rpush("datasets", *[f"datasets/training/2018-04-0{n}.pkl" for n in (4, 1, 3, 2)],
                      "datasets/training/readme.txt")
    queue.push([D[0]])                    # also pushed the new way: still once
    assert queue.stats().pending == 6
    assert drain(queue) == D[:4]
    [(item, reason, _)] = queue.dead()
    assert item == "datasets/training/readme.txt" and "names no date" in reason
    assert queue.redis.exists("datasets") == 0


def test_stats_json_shape(queue):
    queue.push(D[:3])
    queue.complete(queue.lease("w"))
    queue.lease("worker-7")
    payload = queue.stats().to_json()
    assert set(payload) == {"pending", "leased", "dead", "done"}
    assert payload["pending"] == 1 and payload["done"] == 1 and payload["dead"] == 0
    [row] = payload["leased"]
    assert row["date"] == "2018-04-02" and row["holder"] == "worker-7"
    dt.datetime.fromisoformat(row["deadline"])
    json.dumps(payload)


def test_mark_done_removes_trained_dates_from_pending(queue):
    queue.push(D[:3])
    assert queue.mark_done([D[0], D[1]]) == [D[0], D[1]]
    assert drain(queue) == [D[2]]
    assert queue.push(D[:3]) == []


def test_concurrent_leasers_never_share_a_date(settings):
    # 4 processes lease+complete as fast as they can on a non-serial queue
    WorkQueue(settings).push([dt.date(2018, 1, 1) + dt.timedelta(days=i) for i in range(200)])
    code = (
        "import sys; from trainer.queue.work_queue import WorkQueue\n"
        "from trainer.queue.settings import RedisSettings\n"
        "q = WorkQueue(RedisSettings.from_url(sys.argv[1]), serial=False)\n"
        "while (l := q.lease(sys.argv[2])):\n    q.complete(l); print(l.date)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, settings_url(settings), f"p{i}"],
                              stdout=subprocess.PIPE, text=True) for i in range(4)]
    seen = [line for p in procs for line in p.communicate(timeout=60)[0].split()]
    assert len(seen) == 200 and len(set(seen)) == 200


def settings_url(settings):
    return f"redis://{settings.host}:{settings.port}/{settings.db}"


def test_unreachable_redis_is_a_queue_connection_error(redis_server):
    from redis_server import free_port

    settings = RedisSettings(host="127.0.0.1", port=free_port(), socket_timeout=1)
    with pytest.raises(QueueConnectionError, match="127.0.0.1"):
        WorkQueue(settings)


def test_wrong_password_is_reported_as_authentication(tmp_path):
    from redis_server import RedisServer

    with RedisServer(tmp_path) as server:
        redis.Redis(port=server.port).config_set("requirepass", "right")
        settings = RedisSettings.from_url(f"redis://:wrong@127.0.0.1:{server.port}/0")
        with pytest.raises(QueueConnectionError, match="authentication failed"):
            settings.client()
        ok = RedisSettings.from_url(f"redis://:right@127.0.0.1:{server.port}/0")
        assert ok.client().ping()


def test_tls_to_a_plain_server_is_reported_as_a_tls_failure(redis_server):
    settings = RedisSettings.from_url(f"rediss://127.0.0.1:{redis_server.port}/0",
                                      socket_timeout=2)
    with pytest.raises(QueueConnectionError) as info:
        settings.client()
    assert f"127.0.0.1:{redis_server.port}" in str(info.value)
    assert "TLS" in str(info.value) or "timed out" in str(info.value)
