"""Arguments and output helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys

from trainer.data.schema import parse_date
from trainer.storage import Share


def date_arg(text: str) -> dt.date:
    try:
        return parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", metavar="ROOT", default=os.environ.get("FRAUDPIPE_STORAGE"),
        required="FRAUDPIPE_STORAGE" not in os.environ,
        help="storage root: the Filestore mount in a pod (/mnt/fileserver) or a local "
             "directory (env FRAUDPIPE_STORAGE)")


def share_of(args: argparse.Namespace) -> Share:
    return Share.at(args.storage)


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=1, sort_keys=True, default=str)
    sys.stdout.write("\n")
