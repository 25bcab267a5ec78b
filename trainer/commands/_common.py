"""Arguments and output helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import os
import re
import sys

from trainer.learners import DEFAULT_LEARNER, LEARNER_NAMES
from trainer.share.layout import Share, open_share

_DATE_FORM = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def date_problem(text: str) -> str:
    """Why `text` is not a date, in words (it may have the YYYY-MM-DD form and still not be one)."""
    match = _DATE_FORM.match(text)
    if not match:
        return f"{text!r} is not a date; expected YYYY-MM-DD, e.g. 2018-04-01"
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12:
        return f"{text!r} is not a valid date: there is no month {month:02d}"
    if year >= 1:
        last = calendar.monthrange(year, month)[1]
        if not 1 <= day <= last:
            return (f"{text!r} is not a valid date: {calendar.month_name[month]} {year} "
                    f"has {last} days")
    return f"{text!r} is not a valid date (years start at 0001)"


def date_arg(text: str) -> dt.date:
    """Argument type of a YYYY-MM-DD date, with an error that says what is wrong."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(date_problem(text)) from None


def positive_int(text: str) -> int:
    """Argument type of an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def command_parser(sub, run, name: str, *, creates: bool = False,
                   **kwargs) -> argparse.ArgumentParser:
    """Sub-command `name`'s parser, with --storage (see `add_storage`) and `run` as handler.

    `kwargs` go to `add_parser` (help, description).
    """
    parser = sub.add_parser(name, **kwargs)
    add_storage(parser, creates=creates)
    parser.set_defaults(func=run)
    return parser


def add_storage(parser: argparse.ArgumentParser, creates: bool = False) -> None:
    """The --storage option; `creates` for the commands that may create a new share."""
    env = os.environ.get("FRAUDPIPE_STORAGE")
    what = ("created with its marker when it is not a share yet" if creates else
            "must be a share (created by `fraudpipe ingest` or `fraudpipe init`)")
    parser.add_argument(
        "--storage", metavar="ROOT", default=env, required=env is None,
        help=f"storage root: the Filestore mount in a pod (/mnt/fileserver) or a local "
             f"directory; {what} (env FRAUDPIPE_STORAGE"
             + (f", now {env})" if env else ", unset)"))


def share_of(args: argparse.Namespace) -> Share:
    """The existing share of `--storage`; a missing or non-share path is an error."""
    return open_share(args.storage)


def add_learner(parser: argparse.ArgumentParser) -> None:
    """The --learner option, with the real default and the choices in `--help`."""
    names = list(LEARNER_NAMES)
    parser.add_argument(
        "--learner", choices=names, metavar="NAME",
        help=f"learner of a new chain, one of {', '.join(names)} (default "
             f"{DEFAULT_LEARNER}); an existing chain keeps its own and refuses another")


def print_json(data) -> None:
    """Print `data` as indented, sorted JSON on stdout."""
    json.dump(data, sys.stdout, indent=1, sort_keys=True, default=str)
    sys.stdout.write("\n")
