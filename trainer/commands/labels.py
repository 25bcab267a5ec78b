"""`fraudpipe labels`: file labels that arrive after their days, then complete the days."""

from __future__ import annotations

import argparse

from trainer.commands._common import (
    command_parser,
    date_arg,
    positive_int,
    print_json,
    share_of,
)
from trainer.data.label_delay import GENUINE_AFTER_DAYS

DESCRIPTION = """\
Store labels that arrive after their transactions (chargebacks, investigations) and turn
every day whose labels are complete into a training dataset.

SOURCE is a label file (.csv or .parquet) or a directory of them: one transaction id and
one label (0/1) per row, columns TRANSACTION_ID,TX_FRAUD (or the bank export's
tx_id,is_fraud; --map ROLE=COLUMN names others). Partial files are fine: only the confirmed
frauds, say. Each label is filed under its transaction's day in
ROOT/datasets/labels/<date>.parquet, merged with the labels received before. A transaction
labelled two different ways (in one file, two files, or against a label already stored)
is an error naming the files, rows and transaction id, and nothing is stored. Ids of no
arrived day are reported ("unknown"), as are labels that disagree with a day already
completed ("late": not applied).

Then the N-day rule: an arrived day is complete when all its transactions have a label,
or when TODAY >= day + N (a transaction with no label by then is genuine). A complete day
is written to ROOT/datasets/training/<date>.parquet (arrived rows + labels, missing = 0)
with its ingest-manifest entry, and `fraudpipe train` or the queue train it as any
ingested day. TODAY defaults to the latest transaction day on the share (the newest
training or arrived dataset), not the wall clock, so replaying old data behaves the same.

Exit status: 0 when the labels were stored (unknown and late labels are listed, not
fatal); 3 for a missing SOURCE, a bad file or a conflicting label.
"""


#: The roles a label file has, as `fraudpipe ingest --map` names them -> canonical column.
ROLES = {"transaction_id": "TRANSACTION_ID", "label": "TX_FRAUD"}


def _mapping(text: str) -> tuple[str, str]:
    """`ROLE=COLUMN` (as `fraudpipe ingest --map`) -> (the file's column, canonical name)."""
    role, sep, column = text.partition("=")
    if not sep or role.strip() not in ROLES or not column.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected ROLE=COLUMN with ROLE one of {', '.join(ROLES)}, e.g. "
            f"transaction_id=chargeback_ref")
    return column.strip(), ROLES[role.strip()]


def add_parser(sub) -> None:
    """Register `fraudpipe labels` on the CLI."""
    parser = command_parser(
        sub, run,
        "labels", help="store labels that arrive later; complete days by the N-day rule",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", metavar="PATH",
                        help="a label file or a directory of them (omit to only apply the "
                             "N-day rule)")
    parser.add_argument("--genuine-after-days", metavar="N", type=positive_int,
                        default=GENUINE_AFTER_DAYS,
                        help=f"N: a transaction without a label N days after its day is "
                             f"genuine (default {GENUINE_AFTER_DAYS}, the handbook's delay)")
    parser.add_argument("--today", metavar="DATE", type=date_arg,
                        help="the day the N-day rule counts from (default: the latest "
                             "transaction day on the share)")
    parser.add_argument("--map", metavar="ROLE=COLUMN", type=_mapping, action="append",
                        help="the label file's column of a role (transaction_id or label), "
                             "e.g. transaction_id=chargeback_ref (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe labels`; return the exit status."""
    from trainer.labels import LabelsResult, complete_days, default_today, store_labels

    share = share_of(args)
    stored = (store_labels(share, args.source, dict(args.map or [])) if args.source
              else LabelsResult())
    today = args.today or default_today(share)
    completed = complete_days(share, today, args.genuine_after_days)
    if args.json:
        print_json({**stored.to_json(), "today": today, "completed": completed,
                    "genuine_after_days": args.genuine_after_days})
        return 0
    if args.source:
        print(stored.summary())
    for day in completed:
        print(f"complete   {day['date']} ({day['how']}): {day['rows']} rows, {day['labels']} "
              f"label(s) received, {day['frauds']} fraud(s) -> training dataset")
    print(f"{len(completed)} day(s) completed (today {today}, N = "
          f"{args.genuine_after_days}); train them with: fraudpipe train --storage "
          f"{share.root}")
    return 0
