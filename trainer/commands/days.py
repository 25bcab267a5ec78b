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
                    "checkpoint scored it, and whether it is trained.")
    parser.add_argument("--json", action="store_true", help="print the days as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe days`; return the exit status."""
    from trainer.days import day_states

    share = share_of(args)
    days = day_states(share)
    if args.json:
        print_json(days)
        return 0
    for d in days:
        labels = "" if d["labels"] is None else f", {d['labels']} label(s) received"
        how = f", labelled: {d['labelled_by']}" if d["labelled_by"] else ""
        scorer = f", scored by {d['scored_by']}" if d["scored_by"] else ", not scored"
        came = "arrived unlabelled" if d["arrived"] else "arrived labelled"
        print(f"{d['date']}  {d['state']:15}  {came}{labels}{how}{scorer}")
    if not days:
        print(f"no day on {share.root} yet (fraudpipe ingest --source DIR --storage "
              f"{share.root})")
    return 0
