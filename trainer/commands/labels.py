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
frauds, say. Each file is read on its own: a good one is filed by transaction day in
ROOT/datasets/labels/<date>.parquet (every label kept with its file, row and arrival
time; a file of the same name as one stored before replaces its labels), a bad one is
copied to ROOT/datasets/quarantine/ with its reason and the others go on. Two files that
label a transaction two ways are both kept: a conflict, shown until one of them is
withdrawn (--withdraw NAME) or delivered again agreeing. Ids of no day yet are kept and
filed when their day arrives. Labels for a day already complete are stored too ("late"):
`fraudpipe relabel` applies them (and the late rows the ingest kept aside for trained
days).

Then the N-day rule: an arrived day is complete when it is closed (later data shows it
is over, or `fraudpipe close`), has no label conflict, no quarantined label file names
its transactions, and all its transactions have a label or TODAY >= day + N (a
transaction with no label by then is genuine). A complete day is written to
ROOT/datasets/training/<date>.parquet (arrived rows + labels, missing = 0) with its
ingest-manifest entry. TODAY defaults to the latest transaction day on the share (the
newest training or arrived dataset), not the wall clock.

Exit status: 0 when no label problem is left on the share; 3 while a label conflict or a
quarantined label file is unresolved (everything else is stored and completed first;
each problem is printed), and for a missing SOURCE.
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
    parser.add_argument("--withdraw", metavar="NAME", action="append",
                        help="remove the labels of the label file NAME (stored or "
                             "quarantined), e.g. a wrong correction (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe labels`; return the exit status."""
    import sys

    from trainer.data.held_parts import held_days
    from trainer.label_files import LabelsResult, store_labels, withdraw_label_files
    from trainer.labels import complete_days, default_today, label_problems
    from trainer.relabel import late_labels, late_summary

    share = share_of(args)
    withdrawn = withdraw_label_files(share, args.withdraw) if args.withdraw else []
    stored = (store_labels(share, args.source, dict(args.map or [])) if args.source
              else LabelsResult())
    today = args.today or default_today(share)
    completed = complete_days(share, today, args.genuine_after_days)
    late, held = late_labels(share), held_days(share)
    problems = label_problems(share)
    code = 3 if problems else 0
    if args.json:
        print_json({**stored.to_json(), "withdrawn": withdrawn, "today": today,
                    "completed": completed, "genuine_after_days": args.genuine_after_days,
                    "late": late, "late_rows": held, "problems": problems})
        return code
    for w in withdrawn:
        print(f"withdrawn  {w['source']}: {w['labels']} label(s) removed"
              + (", its quarantine record cleared" if w["quarantine_cleared"] else ""))
    if args.source:
        print(stored.summary())
    for day in completed:
        missing = (f", {len(day['labels_for_missing_ids'])} label(s) for ids no longer in "
                   f"the day (kept in the manifest)" if day["labels_for_missing_ids"] else "")
        print(f"complete   {day['date']} ({day['how']}): {day['rows']} rows, {day['labels']} "
              f"label(s) received, {day['frauds']} fraud(s) -> training dataset{missing}")
    print(f"{len(completed)} day(s) completed (today {today}, N = "
          f"{args.genuine_after_days}); train them with: fraudpipe train --storage "
          f"{share.root}")
    if late or held:
        days = sorted({d["date"] for d in late} | {d["date"] for d in held})
        print(f"late       {late_summary(late, held)}: {', '.join(days)}; apply them with: "
              f"fraudpipe relabel --storage {share.root}")
    for problem in problems:
        print(f"fraudpipe labels: unresolved: {problem}", file=sys.stderr)
    return code
