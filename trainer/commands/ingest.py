"""`fraudpipe ingest`: validate dataset files and put them on the share."""

from __future__ import annotations

import argparse
import json
import sys

from trainer.data.ingest import ingest_path
from trainer.storage import Share

DESCRIPTION = """\
Validate dataset files and write them to ROOT/datasets/training/<date>.parquet
(or ROOT/datasets/testing/<date>.parquet with --testing) in canonical form, atomically.
SOURCE is one file or a directory (every non-hidden file in it, in name order); files are
named <YYYY-MM-DD>.parquet|csv|pkl and every row must fall on that date.

A file that does not validate is moved to ROOT/datasets/quarantine/<name> (copied when the
source cannot be removed) with <name>.reason.txt, and the run goes on. Re-ingesting an
identical file does nothing ("unchanged"). A changed file for a day already trained is
refused and left in place; for a day not trained yet it replaces the old one.

Exit status: 0 when the run completed and at least one file could be read, even if others
were quarantined or refused (all are listed in the output); 3 when nothing could be read
(missing or empty SOURCE, or every file quarantined).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `ingest` on the CLI."""
    parser = subparsers.add_parser(
        "ingest",
        help="validate dataset files and write them to the share",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", required=True, metavar="PATH", help="a file or a directory")
    parser.add_argument("--storage", required=True, metavar="ROOT", help="the share's root")
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="also read .pkl files (the GKE sample's format). A pickle can execute code "
        "when loaded: use only for trusted files; without it .pkl files are quarantined",
    )
    parser.add_argument(
        "--testing",
        action="store_true",
        help="ingest as testing datasets (datasets/testing/); a name that is not a date "
        "(the sample's test_dataset.pkl) takes the date its rows share",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Ingest `args.source` onto `args.storage`; see DESCRIPTION for the exit status."""
    result = ingest_path(
        args.source, Share.at(args.storage), allow_pickle=args.allow_pickle, testing=args.testing
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.summary())
    if not result.read_any:
        print(f"fraudpipe ingest: error: no readable dataset in {args.source}", file=sys.stderr)
        return 3
    return 0
