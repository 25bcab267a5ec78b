"""`fraudpipe queue ...` against a real redis-server."""

from __future__ import annotations

import json

import pytest

from trainer.commands import queue as queue_command
from trainer.queue.settings import RedisSettings
from trainer.queue.work_queue import WorkQueue

pytestmark = pytest.mark.integration


def cli(capsys, *argv):
    import argparse

    parser = argparse.ArgumentParser(prog="fraudpipe")
    sub = parser.add_subparsers(dest="command", required=True)
    queue_command.add_parser(sub)
    args = parser.parse_args(["queue", *argv])
    code = args.func(args)
    return code, capsys.readouterr().out


def test_push_stats_dead_retry_dead(capsys, redis_url, monkeypatch):
    code, out = cli(capsys, "push", "--redis-url", redis_url, "2018-04-02", "2018-04-01")
    assert code == 0 and "queued 2" in out
    code, out = cli(capsys, "push", "--redis-url", redis_url, "2018-04-01", "2018-04-03")
    assert "queued 1" in out and "1 already" in out
    queue = WorkQueue(RedisSettings.from_url(redis_url))
    lease = queue.lease("w-1")
    queue.fail(lease, "DatasetValidationError: bad column", permanent=True)
    queue.lease("w-2")
    monkeypatch.setenv("FRAUDPIPE_REDIS_URL", redis_url)  # --redis-url from the environment
    code, out = cli(capsys, "stats", "--json")
    payload = json.loads(out)
    assert payload["pending"] == 1 and payload["dead"] == 1 and payload["done"] == 0
    assert [(r["date"], r["holder"]) for r in payload["leased"]] == [("2018-04-02", "w-2")]
    code, out = cli(capsys, "dead")
    assert "2018-04-01" in out and "bad column" in out
    code, out = cli(capsys, "retry-dead")
    assert "requeued 1" in out and queue.stats().pending == 2


def test_push_from_storage_queues_every_ingested_day(capsys, redis_url, tmp_path):
    from trainer.share.layout import create_share

    share, _ = create_share(tmp_path, "test")  # a share, as `fraudpipe ingest` leaves it
    share.training_dir.mkdir(parents=True)
    for day in ("2018-04-01", "2018-04-02"):
        (share.training_dir / f"{day}.parquet").write_bytes(b"")
    code, out = cli(capsys, "push", "--redis-url", redis_url, "--from-storage", str(tmp_path))
    assert code == 0 and "queued 2" in out


def test_push_from_storage_refuses_a_path_that_is_not_a_share(capsys, redis_url, tmp_path):
    from trainer.errors import NotAShareError

    with pytest.raises(NotAShareError, match=f"{tmp_path / 'typo'} does not exist"):
        cli(capsys, "push", "--redis-url", redis_url, "--from-storage", str(tmp_path / "typo"))


def test_bad_url_exits_naming_the_problem(capsys):
    with pytest.raises(SystemExit, match="redis://"):
        cli(capsys, "stats", "--redis-url", "http://nowhere")


def test_push_from_storage_skips_days_before_the_head(capsys, redis_url, tmp_path):
    from tests.shares import simulated_share
    from trainer.step import run_step

    # GIVEN five ingested days of which the chain trained day 1 and day 3 (day 2 is a gap)
    share = simulated_share(tmp_path / "share", 5)
    days = share.training_dates()
    run_step(share, days[0], learner="sgd")
    run_step(share, days[2], learner="sgd")
    # WHEN the ingested days are queued from the share
    code, out = cli(capsys, "push", "--redis-url", redis_url, "--from-storage", str(share.root))
    # THEN only the days after the head are pending: day 2 would fail with OutOfOrderError
    queue = WorkQueue(RedisSettings.from_url(redis_url))
    assert code == 0 and "queued 2" in out, out
    leased = [queue.lease("w"), ]
    queue.complete(leased[0])
    leased.append(queue.lease("w"))
    queue.complete(leased[1])
    assert [lease.date for lease in leased] == days[3:]
    assert queue.lease("w") is None and queue.stats().dead == 0
