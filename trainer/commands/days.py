"""`fraudpipe days`: what each day on the share is — arrived, scored, labelled, trained."""

from __future__ import annotations

import argparse

from trainer.commands._common import command_parser, print_json, share_of


def add_parser(sub) -> None:
    """Register `fraudpipe days` on the CLI."""
    parser = command_parser(
        sub, run,
        "days", help="list each day: arrived, labels received, scored by, trained",
        description="One line per day on the share, read from its files: whether it "
                    "arrived without labels, how many labels came since, how it became a "
                    "training dataset (arrived labelled, all labelled, N-day rule), which "
                    "checkpoint scored it (and whether those scores are stale), whether it "
                    "is trained, and what holds it back: open (no later data shows it is "
                    "over), a label conflict, a quarantined label file; late labels.")
    parser.add_argument("--json", action="store_true", help="print the days as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe days`; return the exit status."""
    from trainer.days import day_states, describe

    share = share_of(args)
    days = day_states(share)
    if args.json:
        print_json(days)
        return 0
    for d in days:
        print(describe(d))
    if not days:
        print(f"no day on {share.root} yet (fraudpipe ingest --source DIR --storage "
              f"{share.root})")
    return 0
