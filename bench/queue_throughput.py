"""Lease + complete operations per second on loopback: fraudpipe's queue vs the sample's.

    .venv/bin/python bench/queue_throughput.py --items 20000

Both queues run against the same private redis-server in the same run, with 1 and 4
client processes. The sample's queue (docs/facts.md#the-gke-sample) leases with
`BRPOPLPUSH datasets datasets:processing` and completes with `LREM`; ours runs the LEASE
Lua script (reaper, sample-list adoption, earliest date, Redis TIME deadline, token) and
the token-checked COMPLETE script. One "op" here is one lease plus its completion.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from redis_server import RedisServer  # noqa: E402

from trainer.queue.settings import RedisSettings  # noqa: E402
from trainer.queue.work_queue import WorkQueue  # noqa: E402


def _dates(n: int) -> list[str]:
    first = dt.date(1900, 1, 1)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(n)]


def sample_client(url: str, counter) -> None:
    r = redis.Redis.from_url(url)
    done = 0
    while (item := r.brpoplpush("datasets", "datasets:processing", timeout=1)) is not None:
        r.lrem("datasets:processing", 0, item)
        done += 1
    with counter.get_lock():
        counter.value += done


def fenced_client(url: str, counter, serial: bool) -> None:
    queue = WorkQueue(RedisSettings.from_url(url, key_prefix="bench"), serial=serial)
    done = 0
    name = f"bench-{multiprocessing.current_process().pid}"
    misses = 0
    while misses < 200:
        lease = queue.lease(name)
        if lease is None:  # serial queue: another client holds the one lease
            if queue.stats().pending == 0 and not queue.stats().leased:
                break
            misses += 1
            continue
        misses = 0
        queue.complete(lease)
        done += 1
    with counter.get_lock():
        counter.value += done


def measure(kind: str, url: str, items: int, clients: int, serial: bool = False) -> dict:
    r = redis.Redis.from_url(url)
    r.flushdb()
    dates = _dates(items)
    if kind == "sample":
        for i in range(0, items, 1000):
            r.rpush("datasets", *[f"datasets/training/{d}.pkl" for d in dates[i:i + 1000]])
        target, args = sample_client, ()
    else:
        queue = WorkQueue(RedisSettings.from_url(url, key_prefix="bench"))
        for i in range(0, items, 1000):
            queue.push(dates[i:i + 1000])
        target, args = fenced_client, (serial,)
    counter = multiprocessing.Value("i", 0)
    procs = [multiprocessing.Process(target=target, args=(url, counter, *args))
             for _ in range(clients)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - started
    assert counter.value == items, f"{kind}: {counter.value} of {items} items handled"
    return {"queue": kind + (" serial" if serial else ""), "clients": clients, "items": items,
            "seconds": round(seconds, 2), "lease_complete_per_s": round(items / seconds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=20000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fraudpipe-bench-") as tmp:
        with RedisServer(Path(tmp)) as server:
            for clients in (1, 4):
                rows.append(measure("sample", server.url, args.items, clients))
                rows.append(measure("fraudpipe", server.url, args.items, clients))
            rows.append(measure("fraudpipe", server.url, args.items // 4, 4, serial=True))
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
