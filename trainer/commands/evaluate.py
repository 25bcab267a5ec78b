"""`fraudpipe evaluate`: the handbook's protocol on a checkpoint, or on several test weeks.

One split: `--checkpoint C --test-start S`. `--prequential`: the test weeks from
`--test-start` (default 2018-08-08, the handbook's headline week) back to back, each scored
by the chain's checkpoint of 8 days before it (`trainer.evaluation.prequential`), and the
mean: what bench/QUALITY.md reports, measured on the user's own share.
"""

from __future__ import annotations

import argparse
import datetime as dt

from trainer.commands._common import command_parser, date_arg, positive_int, print_json, share_of
from trainer.errors import DatasetValidationError, PermanentError
from trainer.share.layout import Share

TEST_DAYS = 7
KNOWN_WINDOW_DAYS = 7
#: The prequential protocol's defaults (kept here, not imported: building the parser must
#: not load the evaluation code; a test checks they equal trainer.evaluation.prequential's).
FIRST_TEST_START = dt.date(2018, 8, 8)
WEEKS = 4


def add_parser(sub) -> None:
    """Register `fraudpipe evaluate` on the CLI."""
    parser = command_parser(
        sub, run,
        "evaluate", help="score test days with a checkpoint, the handbook's protocol",
        description="Known-compromised cards filtered (frauds in the known window up to the "
                    "checkpoint's day, plus the delay days revealed one per test day); ROC "
                    "AUC, average precision and Card Precision@100 (the fraud-detection "
                    "handbook, chapter 5). Every day of the test window must be ingested.")
    parser.add_argument("--checkpoint", metavar="DATE", type=date_arg,
                        help="the day whose checkpoint scores the test days (one split; "
                             "required without --prequential)")
    parser.add_argument("--test-start", metavar="DATE", type=date_arg,
                        help="first test day, after the checkpoint's day (with "
                             f"--prequential: of the first week, default {FIRST_TEST_START})")
    parser.add_argument("--prequential", action="store_true",
                        help="the prequential protocol: --weeks test windows back to back "
                             "from --test-start, each scored by the chain's checkpoint of "
                             "8 days before it (7 days of label delay), and their mean")
    parser.add_argument("--weeks", type=positive_int, default=WEEKS, metavar="N",
                        help=f"--prequential: number of test windows (default {WEEKS})")
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
    if args.prequential:
        return _run_prequential(args)
    if args.checkpoint is None or args.test_start is None:
        raise PermanentError("evaluate needs --checkpoint and --test-start (one split), "
                             "or --prequential (test weeks from --test-start, default "
                             f"{FIRST_TEST_START})")
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


def _run_prequential(args: argparse.Namespace) -> int:
    """`evaluate --prequential`: every test window, then the mean (a table, or --json)."""
    if args.checkpoint is not None:
        raise PermanentError("--prequential picks each week's checkpoint itself (8 days "
                             "before the week); drop --checkpoint, or drop --prequential to "
                             "evaluate one split")
    from trainer.evaluation.prequential import evaluate_prequential

    share = share_of(args)
    first = args.test_start or FIRST_TEST_START
    check_test_window(share, first, args.test_days * args.weeks)
    try:
        result = evaluate_prequential(share, first, args.weeks, test_days=args.test_days,
                                      known_window_days=args.known_window_days)
    except ValueError as exc:
        raise PermanentError(f"invalid evaluation split: {exc}") from exc
    if args.json:
        print_json(result)
        return 0
    print(f"learner: {result['learner']}")
    print("checkpoint / test start   auc_roc  average_precision  card_precision_at_100  "
          "transactions  frauds")
    for key, m in result["splits"].items():
        print(f"{key.replace('/', ' / '):<25} {_cell(m['auc_roc']):>7}  "
              f"{_cell(m['average_precision']):>17}  {_cell(m['card_precision_at_100']):>21}  "
              f"{m['transactions']:>12}  {m['frauds']:>6}")
    mean = result["mean"]
    print(f"{'mean':<25} {_cell(mean['auc_roc']):>7}  {_cell(mean['average_precision']):>17}  "
          f"{_cell(mean['card_precision_at_100']):>21}")
    return 0


def _cell(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
