"""`fraudpipe evaluate`: the handbook's protocol on a checkpoint of the chain."""

from __future__ import annotations

import argparse

from trainer.commands._common import add_storage, date_arg, print_json, share_of


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "evaluate", help="score test days with a checkpoint, the handbook's protocol",
        description="Known-compromised cards filtered (frauds in the known window up to the "
                    "checkpoint's day, plus the delay days revealed one per test day); ROC "
                    "AUC, average precision and Card Precision@100 "
                    "(docs/facts.md#features-and-evaluation).")
    add_storage(parser)
    parser.add_argument("--checkpoint", metavar="DATE", type=date_arg, required=True,
                        help="the day whose checkpoint scores the test days")
    parser.add_argument("--test-start", metavar="DATE", type=date_arg, required=True)
    parser.add_argument("--test-days", type=int, default=7)
    parser.add_argument("--known-window-days", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trainer.evaluation.checkpoint import evaluate_checkpoint

    result = evaluate_checkpoint(share_of(args), args.checkpoint, args.test_start,
                                 test_days=args.test_days,
                                 known_window_days=args.known_window_days)
    if args.json:
        print_json(result)
    else:
        for key in ("auc_roc", "average_precision", "card_precision_at_100",
                    "transactions", "frauds"):
            print(f"{key}: {result[key]}")
    return 0
