"""`fraudpipe alerts`: a day's list with reasons, or what became of the past lists."""

from __future__ import annotations

import argparse
import datetime as dt

from trainer.commands._common import command_parser, print_json, share_of


def add_parser(sub) -> None:
    """Register `fraudpipe alerts` on the CLI."""
    parser = command_parser(
        sub, run,
        "alerts", help="a day's cards to check, with reasons; --outcomes: past lists' results",
        description="Print a day's list (default: the latest scored day), each card with the "
                    "reasons of its top score and its transactions. With --outcomes, record "
                    "the outcome of every list whose day is now labelled (cards confirmed "
                    "fraud among the ones checked, fraudulent cards the list missed) in "
                    "output/outcomes/<date>.json and print them, oldest first.")
    parser.add_argument("--day", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help="the day whose list to print (default: the latest scored)")
    parser.add_argument("--top", metavar="K", type=int, default=10,
                        help="cards to print (default 10)")
    parser.add_argument("--outcomes", action="store_true",
                        help="the outcomes of the past lists instead of a list")
    parser.add_argument("--review-capacity", metavar="N", type=int, default=None,
                        help="cards the team checks a day, the head of each list whose outcome "
                             "is counted (default 100)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe alerts`; return the exit status."""
    from trainer.commands.score import alert_text
    from trainer.outcomes import REVIEW_CAPACITY, record_outcomes
    from trainer.report import card_alerts

    share = share_of(args)
    if args.outcomes:
        outcomes = record_outcomes(share, args.review_capacity or REVIEW_CAPACITY)
        if args.json:
            print_json(outcomes)
            return 0
        if not outcomes:
            print("no list has its labels yet: a list's outcome is known once its day is "
                  "labelled (fraudpipe days shows which are)")
        for o in outcomes:
            print(f"{o['date']}  checked {o['checked']}, confirmed fraud {o['confirmed']} "
                  f"(hit rate {100 * (o['hit_rate'] or 0):.0f} %), fraudulent cards "
                  f"{o['fraud_cards']}, missed by the list {o['missed']}")
        return 0
    days = sorted(share.scores_dir.glob("*.parquet")) if share.scores_dir.is_dir() else []
    day = args.day or (dt.date.fromisoformat(days[-1].stem) if days else None)
    if day is None:
        print(f"no scored day on {share.root} yet (fraudpipe score, or train two days)")
        return 0
    alerts = card_alerts(share, day, args.top)
    if args.json:
        print_json(alerts)
        return 0
    for alert in alerts:
        print(alert_text(alert))
    return 0
