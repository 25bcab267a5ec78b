"""`fraudpipe features`: prepare the features cache of some days (Argo's fan-out step)."""

from __future__ import annotations

import argparse

from trainer.commands._common import add_storage, date_arg, share_of


def add_parser(sub) -> None:
    """Register `fraudpipe features` on the CLI."""
    parser = sub.add_parser(
        "features", help="compute and cache the features of days",
        description="Write features/<date>.parquet, keyed by the sha256 of its input "
                    "datasets; the step uses it only while it matches its inputs.")
    add_storage(parser)
    parser.add_argument("--dataset", metavar="DATE", type=date_arg, action="append",
                        required=True, help="the day (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe features`; return the exit status."""
    from trainer.features.store import write_features_cache

    share = share_of(args)
    for day in sorted(set(args.dataset)):
        path = write_features_cache(share, day)
        print(f"{day}: {path}")
    return 0
