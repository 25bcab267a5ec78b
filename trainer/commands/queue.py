"""`fraudpipe queue push|stats|dead|retry-dead`: look at and fill the dataset queue."""

from __future__ import annotations

import argparse

from trainer.commands._common import date_arg, print_json
from trainer.commands.worker import add_redis_url, settings_from_args


def add_parser(sub) -> None:
    """Register `fraudpipe queue` on the CLI."""
    parser = sub.add_parser("queue", help="fill and inspect the Redis dataset queue")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    push = actions.add_parser(
        "push", help="queue dataset dates (earliest trains first; duplicates ignored)")
    add_redis_url(push)
    source = push.add_mutually_exclusive_group(required=True)
    source.add_argument("dates", nargs="*", type=date_arg, default=[], metavar="DATE")
    source.add_argument("--from-storage", metavar="ROOT",
                        help="queue every ingested day of ROOT after its lineage head")
    push.set_defaults(func=run_push)

    stats = actions.add_parser("stats", help="pending, leased (holder, deadline), dead, done")
    add_redis_url(stats)
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=run_stats)

    dead = actions.add_parser("dead", help="list dead-lettered datasets with their reason")
    add_redis_url(dead)
    dead.add_argument("--json", action="store_true", help="print JSON")
    dead.set_defaults(func=run_dead)

    retry = actions.add_parser("retry-dead", help="requeue every dead-lettered dataset")
    add_redis_url(retry)
    retry.set_defaults(func=run_retry_dead)


def _queue(args: argparse.Namespace):
    from trainer.queue.work_queue import WorkQueue

    return WorkQueue(settings_from_args(args))


def run_push(args: argparse.Namespace) -> int:
    """Queue the given dates, or every untrained day of a share."""
    queue = _queue(args)
    if args.from_storage:
        from trainer.backlog import queue_trainable, trainable_days
        from trainer.commands.train import report_late_days
        from trainer.share.layout import open_share

        share = open_share(args.from_storage)
        days = trainable_days(share)
        added = queue_trainable(share, queue, days)
        report_late_days(share)
    else:
        days = args.dates
        added = queue.push(days)
    skipped = len(set(days)) - len(added)
    print(f"queued {len(added)} dataset(s)"
          + (f": {', '.join(d.isoformat() for d in added)}" if added else "")
          + (f"; {skipped} already pending, leased, done or dead" if skipped else ""))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print the queue's counts and leases."""
    stats = _queue(args).stats()
    if args.json:
        print_json(stats.to_json())
        return 0
    print(f"pending {stats.pending}  leased {len(stats.leased)}  dead {stats.dead}  "
          f"done {stats.done}")
    for item in stats.leased:
        print(f"  {item.date} held by {item.holder} until {item.deadline.isoformat()}")
    return 0


def run_dead(args: argparse.Namespace) -> int:
    """Print the dead-lettered datasets with their reasons."""
    entries = _queue(args).dead()
    if args.json:
        print_json([{"item": i, "reason": r, "attempts": n} for i, r, n in entries])
        return 0
    if not entries:
        print("no dead-lettered datasets")
    for item, reason, attempts in entries:
        print(f"{item} (after {attempts} attempt(s)): {reason}")
    return 0


def run_retry_dead(args: argparse.Namespace) -> int:
    """Requeue every dead-lettered dataset."""
    moved = _queue(args).retry_dead()
    print(f"requeued {len(moved)} dataset(s)"
          + (f": {', '.join(d.isoformat() for d in moved)}" if moved else ""))
    return 0
