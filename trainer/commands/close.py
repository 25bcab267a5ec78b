"""`fraudpipe close`: say that a day's rows are all there, or how late rows may come."""

from __future__ import annotations

import argparse

from trainer.commands._common import command_parser, date_arg, print_json, share_of


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; expected 0 or more hours")
    return value


def add_parser(sub) -> None:
    """Register `close` on the CLI."""
    parser = command_parser(
        sub, run,
        "close", help="close days (their rows are all there); set the allowed lateness",
        description="A day cut from a file that is not named after it completes and trains "
                    "only once it is closed: a row later than its end plus the allowed "
                    "lateness has arrived, or this command closed it. Recorded in "
                    "ROOT/datasets/closing.json.")
    parser.add_argument("--date", metavar="DATE", type=date_arg, action="append",
                        help="a day to close (repeatable)")
    parser.add_argument("--lateness-hours", metavar="H", type=_hours,
                        help="rows may arrive this long after a day's end before later data "
                             "closes it (default 0)")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")


def run(args: argparse.Namespace) -> int:
    """Record the closes and the lateness; print the record."""
    import sys

    from trainer.data.day_parts import close_days

    if not args.date and args.lateness_hours is None:
        print("fraudpipe close: error: give --date DATE or --lateness-hours H",
              file=sys.stderr)
        return 2
    record = close_days(share_of(args), args.date or [], lateness_hours=args.lateness_hours)
    if args.json:
        print_json(record)
        return 0
    for day in args.date or []:
        print(f"closed     {day}")
    print(f"lateness allowed: {record['lateness_hours']:g} hour(s); "
          f"{len(record['closed'])} day(s) closed by hand")
    return 0
