"""`fraudpipe score`: score the days that arrived without labels with the head model."""

from __future__ import annotations

import argparse

from trainer.commands._common import command_parser, print_json, share_of


def add_parser(sub) -> None:
    """Register `fraudpipe score` on the CLI."""
    parser = command_parser(
        sub, run,
        "score", help="score arrived (unlabelled) days with the head model: today's alerts",
        description="Score every day that arrived without labels and is not trained yet, "
                    "unless the head checkpoint already scored it, writing "
                    "output/scores/<date>.parquet (scores and card ranks; its Parquet "
                    "metadata names the checkpoint) and printing the latest day's top "
                    "cards. With nothing trained yet it says so and exits 0.")
    parser.add_argument("--top", metavar="K", type=int, default=10,
                        help="cards of the latest scored day to print (default 10)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe score`; return the exit status."""
    import datetime as dt

    from trainer.arrival import score_arrived_days
    from trainer.report import card_alerts

    share = share_of(args)
    result = score_arrived_days(share)
    alerts = (card_alerts(share, dt.date.fromisoformat(result.scored[-1]["date"]), args.top)
              if result.scored else [])
    if args.json:
        print_json({**result.to_json(), "alerts": alerts})
        return 0
    print(result.message)
    for alert in alerts:
        print(f"{alert['date']}  #{alert['rank']:<3} card {alert['card_id']}  score "
              f"{alert['highest_score']:.4f}  {alert['transactions']} transaction(s), "
              f"amount {alert['amount']:.2f}")
    return 0
