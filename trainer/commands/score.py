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
                        help="cards of the latest scored day to print, each with the reasons "
                             "of its top score and its transactions (default 10)")
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
        print(alert_text(alert))
    return 0


def alert_text(alert: dict) -> str:
    """One card of the list: its rank and score, why, and its transactions of the day."""
    lines = [f"{alert['date']}  #{alert['rank']:<3} card {alert['card_id']}  score "
             f"{alert['highest_score']:.4f}  {alert['transactions']} transaction(s), "
             f"total amount {alert['amount']:.2f}"]
    if alert.get("reasons"):
        lines.append(f"      why: {alert['reasons']}")
        lines.append(f"      score = booster part {alert['score_from_booster']:.4f} (the reasons "
                     f"explain it) + MLP part {alert['score_from_others']:.4f}"
                     + (" (mostly the MLP's)" if alert["score_from_others"]
                        > alert["score_from_booster"] else ""))
    lines += [f"      {t['time']}  transaction {t['transaction_id']}  terminal "
              f"{t['terminal_id']}  amount {t['amount']:.2f}  score {t['score']:.4f}"
              for t in alert.get("transaction_list", [])]
    return "\n".join(lines)
