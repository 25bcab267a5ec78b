"""Recording a batch in one call (`add_many`) does what recording its rows one by one does.

For the in-process store and for Redis (a real redis-server): the same rows, with a
repeated id, a row too late for the lateness allowed and text and integer ids, give the
same outcome per row, the same day's rows in the same order, the same latest time, and
the answers kept in one write are read back one by one. A Redis batch and one-by-one
additions on another replica see each other's rows (one key space).
"""

from __future__ import annotations

import datetime as dt

import pytest
import redis

from trainer.serving.intraday import MemoryIntraday, RedisIntraday

pytestmark = pytest.mark.integration

DAY = dt.date(2018, 4, 11)
NS = 10**9
ROWS = [
    ("tx-1", 100 * NS, "card-1", "m-1", 12.5),
    ("tx-2", 200 * NS, "card-2", "m-1", 3.0),
    ("tx-1", 250 * NS, "card-1", "m-2", 99.0),   # repeated id: its first answer
    ("tx-3", 150 * NS, "card-1", "m-3", 7.25),   # 50 s late: within 60 s
    ("tx-4", 130 * NS, "card-3", "m-3", 1.0),    # 70 s late: refused
    (5, 300 * NS, 7, 9, 0.0),                    # integer ids
]
LATENESS = 60 * NS


def stores(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    return {"memory": MemoryIntraday(), "redis": RedisIntraday(client, "test")}


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_add_many_records_as_one_by_one_additions(redis_url, kind):
    # GIVEN two empty days of one store: one gets the rows one by one, the other in one call
    store = stores(redis_url)[kind]
    other_day = DAY + dt.timedelta(days=1)
    shifted = [(r[0], r[1] + 86_400 * NS, *r[2:]) for r in ROWS]
    # WHEN
    one_by_one = [store.add(DAY, row, LATENESS) for row in ROWS]
    batch = store.add_many(other_day, shifted, LATENESS)
    # THEN the same outcome per row, the same rows kept in order, the same latest time
    assert [a.status for a in batch] == [a.status for a in one_by_one] == [
        "added", "added", "duplicate", "added", "late", "added"]
    assert batch[4].latest_ns == one_by_one[4].latest_ns + 86_400 * NS == (200 + 86_400) * NS
    assert [r[0] for r in store.day_rows(other_day)] == [r[0] for r in store.day_rows(DAY)]
    assert store.day_rows(other_day) == [shifted[i] for i in (0, 1, 3, 5)]
    assert store.latest_ns(other_day) == store.latest_ns(DAY) + 86_400 * NS
    # AND the answers kept in one write are read back one by one
    store.set_answers(other_day, {"tx-1": b'{"score":0.5}', "5": b'{"score":0.1}'})
    assert store.answer(other_day, "tx-1") == b'{"score":0.5}'
    assert store.answer(other_day, 5) == b'{"score":0.1}'
    again = store.add_many(other_day, shifted[:1], LATENESS)[0]
    assert (again.status, again.answer) == ("duplicate", b'{"score":0.5}')


def test_a_redis_batch_and_another_replicas_single_additions_share_the_day(redis_url):
    first = RedisIntraday(redis.Redis.from_url(redis_url), "test")
    second = RedisIntraday(redis.Redis.from_url(redis_url), "test")
    first.add_many(DAY, ROWS[:2], LATENESS)
    added = second.add(DAY, ("tx-9", 210 * NS, "card-1", "m-9", 4.0), LATENESS)
    # the card's rows include the batch's row of that card, recorded by the other replica
    assert added.status == "added"
    assert [r[0] for r in added.card_rows] == ["tx-1", "tx-9"]
    assert first.add_many(DAY, [ROWS[0]], LATENESS)[0].status == "duplicate"
