"""`fraudpipe worker`: drain the Redis queue into the lineage, one day at a time."""

from __future__ import annotations

import argparse
import os

from trainer.commands._common import add_learner, command_parser, share_of

DEFAULT_LEASE_SECONDS = 300.0


def add_redis_url(parser: argparse.ArgumentParser) -> None:
    """The --redis-url option shared by `worker` and `queue`."""
    parser.add_argument(
        "--redis-url", metavar="URL", default=os.environ.get("FRAUDPIPE_REDIS_URL"),
        help="redis:// or rediss:// URL of the queue (env FRAUDPIPE_REDIS_URL; without "
             "either, the FRAUDPIPE_REDIS_* variables or localhost:6379)")


def settings_from_args(args: argparse.Namespace):
    """RedisSettings from --redis-url / the environment; a bad value exits naming it."""
    from pydantic import ValidationError

    from trainer.queue.settings import RedisSettings

    try:
        return RedisSettings.from_env(args.redis_url)
    except (ValueError, ValidationError) as exc:
        raise SystemExit(f"fraudpipe {args.command}: error: Redis settings: {exc}") from exc


def add_parser(sub) -> None:
    """Register `fraudpipe worker` on the CLI."""
    parser = command_parser(
        sub, run,
        "worker", help="lease datasets from the Redis queue and train them in date order",
        description="Lease the earliest pending day, train it (fraudpipe step) while a "
                    "heartbeat renews the lease, complete it. Failures are retried up to "
                    "--max-attempts, permanent ones (invalid dataset, day before the head) "
                    "are dead-lettered at once. SIGTERM stops within seconds and gives the "
                    "lease back.")
    add_redis_url(parser)
    parser.add_argument("--burst", action="store_true",
                        help="exit when nothing is pending or leased (a Kubernetes Job)")
    parser.add_argument("--max-jobs", type=int, metavar="N",
                        help="exit after N leases (default: no limit)")
    parser.add_argument("--lease-seconds", type=float, default=DEFAULT_LEASE_SECONDS,
                        metavar="S", help="lease length; renewed every S/3 (default 300)")
    parser.add_argument("--max-attempts", type=int, default=3, metavar="N",
                        help="attempts before a dataset is dead-lettered (default 3)")
    parser.add_argument("--max-idle-seconds", type=float, metavar="S",
                        help="exit after S seconds without work (default: never)")
    parser.add_argument("--name", help="holder name shown in queue stats (default host:pid)")
    add_learner(parser)
    # A service: its log lines (each lease, each reload) are what it prints.
    parser.set_defaults(logs_are_output=True)


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe worker`; return the exit status."""
    from trainer.queue.work_queue import WorkQueue
    from trainer.queue.worker import Worker

    if args.lease_seconds <= 0 or (args.max_jobs is not None and args.max_jobs < 1):
        raise SystemExit("fraudpipe worker: --lease-seconds and --max-jobs must be positive")
    # Before the first lease: on a missing mount every step would fail and the worker
    # would dead-letter the whole queue.
    share = share_of(args)
    queue = WorkQueue(settings_from_args(args), lease_seconds=args.lease_seconds,
                      max_attempts=args.max_attempts)
    worker = Worker(share, queue, name=args.name, learner=args.learner)
    worker.work(burst=args.burst, max_jobs=args.max_jobs,
                max_idle_seconds=args.max_idle_seconds)
    return 0
