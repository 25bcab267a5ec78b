"""`fraudpipe evaluate`: the handbook's protocol on a checkpoint of the chain."""

from __future__ import annotations

import argparse
import datetime as dt

from trainer.commands._common import command_parser, date_arg, positive_int, print_json, share_of
from trainer.errors import DatasetValidationError, PermanentError
from trainer.share.layout import Share

TEST_DAYS = 7
KNOWN_WINDOW_DAYS = 7


def add_parser(sub) -> None:
    """Register `fraudpipe evaluate` on the CLI."""
    parser = command_parser(
        sub, run,
        "evaluate", help="score test days with a checkpoint, the handbook's protocol",
        description="Known-compromised cards filtered (frauds in the known window up to the "
                    "checkpoint's day, plus the delay days revealed one per test day); ROC "
                    "AUC, average precision and Card Precision@100 (the fraud-detection "
                    "handbook, chapter 5). Every day of the test window must be ingested.")
    parser.add_argument("--checkpoint", metavar="DATE", type=date_arg, required=True,
                        help="the day whose checkpoint scores the test days")
    parser.add_argument("--test-start", metavar="DATE", type=date_arg, required=True,
                        help="first test day, after the checkpoint's day")
    parser.add_argument("--test-days", type=positive_int, default=TEST_DAYS, metavar="N",
                        help=f"test window length in days (default {TEST_DAYS})")
    parser.add_argument("--known-window-days", type=int, default=KNOWN_WINDOW_DAYS,
                        metavar="N", help="days up to the checkpoint whose frauds are known "
                                          f"(default {KNOWN_WINDOW_DAYS})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def check_test_window(share: Share, test_start: dt.date, test_days: int) -> None:
    """Refuse a test window with days missing from the share, naming them and the window."""
    from trainer.evaluation.split import testing_days

    window = testing_days(test_start, test_days)
    missing = [d for d in window if not share.training_dataset(d).is_file()]
    if missing:
        default = " (the default)" if test_days == TEST_DAYS else ""
        raise DatasetValidationError(
            f"the test window is {test_days} day(s){default}, {window[0]} to {window[-1]}; "
            f"{len(missing)} of them are not ingested on {share.root}: "
            f"{', '.join(d.isoformat() for d in missing)}. Ingest them, or pass an earlier "
            f"--test-start or a smaller --test-days")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe evaluate`; return the exit status."""
    from trainer.evaluation.checkpoint import evaluate_checkpoint

    share = share_of(args)
    check_test_window(share, args.test_start, args.test_days)
    try:
        result = evaluate_checkpoint(share, args.checkpoint, args.test_start,
                                     test_days=args.test_days,
                                     known_window_days=args.known_window_days)
    except ValueError as exc:  # the protocol's split rules (test after the checkpoint)
        raise PermanentError(f"invalid evaluation split: {exc}") from exc
    if args.json:
        print_json(result)
    else:
        for key in ("auc_roc", "average_precision", "card_precision_at_100",
                    "transactions", "frauds"):
            print(f"{key}: {result[key]}")
    return 0
