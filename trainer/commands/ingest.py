"""`fraudpipe ingest`: validate dataset files and put them on the share."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from trainer.commands._common import add_storage
from trainer.data.roles import MAPPING_FILE_NAME, ROLES
from trainer.share.layout import Share, create_share

if TYPE_CHECKING:
    from trainer.data.ingest import IngestResult

DESCRIPTION = """\
Validate dataset files and write them to ROOT/datasets/training/<date>.parquet
(or ROOT/datasets/testing/<date>.parquet with --testing) in canonical form, atomically.
SOURCE is one file or a directory (every non-hidden file in it, in name order), .parquet
or .csv (.pkl with --allow-pickle). A file named <YYYY-MM-DD>.<suffix> holds that day and
every row must fall on it; any other file (a month, a whole export) is cut into the days
its rows fall on, each day validated on its own: a bad day is quarantined with its
reason, the others go on. Rows of one day may come from several files (a month cut at
UTC midnight read in another zone, a late file): they are merged into the day when their
ids are new to it, rows it already holds identically change nothing, and rows whose ids
it holds with other values are refused, naming both files and the ids. A day cut from a
file not named after it trains (or completes by its labels) only once it is closed:
later data shows it is over, or `fraudpipe close`.

Columns: each role is read from the column the mapping names (default: the simulator's
names). Give the mapping once as ROOT/fraudpipe-mapping.json, e.g.
  {"columns": {"transaction_id": "tx_id", "timestamp": "timestamp", "card": "card_id",
               "terminal": "merchant_id", "amount": "amount", "label": "is_fraud"},
   "timezone": "UTC"}
or with --mapping FILE, and override single roles with --map ROLE=COLUMN. Roles:
transaction_id (TRANSACTION_ID), timestamp (TX_DATETIME), card (CUSTOMER_ID), terminal
(TERMINAL_ID), amount (TX_AMOUNT), label (TX_FRAUD). All but label are required. A file
without its label column is an unlabelled day: written to
ROOT/datasets/arrived/<date>.parquet (no TX_FRAUD), scored on arrival and trained once its
labels come. TX_TIME_SECONDS, TX_TIME_DAYS, TX_FRAUD_SCENARIO (the simulator's) are kept
when present; other columns are dropped and listed in the manifest. Ids may be integers
or text (kept exactly: alerts name cards by your ids); a share keeps one id type. Times:
int64 ns, datetimes or ISO-8601 text; values with a zone (Z, +02:00) are converted to the
mapping's timezone (UTC by default) and stored without zone, naive ones are taken as in
that zone, and days run midnight to midnight there. The mapping used is recorded in
ROOT/datasets/ingested.json for each day.

ROOT becomes a share if it is not one yet: the directory and its marker
fraudpipe-share.json are created, and the output says so. (Every other command refuses a
ROOT that is not a share.)

Sources are never deleted or moved, unless --archive DIR asks to move the ingested ones.
A file that does not validate (or has a day that does not) is copied to
ROOT/datasets/quarantine/ under a name of its own (<time>-<sha256 prefix>-<name>) with a
.reason.txt beside it (one reason per bad day); the output names the source and where the
copy went, and the run goes on. A day whose TRANSACTION_IDs are already used by a day
within 37 days is refused, naming both files. Re-ingesting an identical file does nothing
("unchanged").
A changed file for a day already trained is refused and left in place; for a day not
trained yet, a changed file of the same name replaces the old one.

Exit status: 0 when the run completed and at least one file could be read, even if others
were quarantined or refused (all are listed in the output); 3 when nothing could be read
(missing or empty SOURCE, or every file quarantined), or ROOT is a file; 2 when the
mapping is mistyped (--mapping, --map, --timezone, or ROOT/fraudpipe-mapping.json).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `ingest` on the CLI."""
    parser = subparsers.add_parser(
        "ingest",
        help="validate dataset files and write them to the share (creating it if needed)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", required=True, metavar="PATH", help="a file or a directory")
    add_storage(parser, creates=True)
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
    parser.add_argument(
        "--archive", metavar="DIR",
        help="move each source that is on the share afterwards (ingested or unchanged) into "
        "DIR; quarantined and refused files stay. Default: sources stay where they are")
    parser.add_argument(
        "--mapping", metavar="FILE",
        help=f"column mapping file (JSON, as above). Default: ROOT/{MAPPING_FILE_NAME} if "
        "present, else the simulator's column names")
    parser.add_argument(
        "--map", action="append", metavar="ROLE=COLUMN", dest="map_pairs",
        help=f"read ROLE from COLUMN, over the mapping file; repeatable. Roles: "
        f"{', '.join(ROLES)}")
    parser.add_argument(
        "--timezone", metavar="ZONE",
        help="IANA zone TX_DATETIME is stored in and days are cut in (default: the "
        "mapping's, else UTC)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
    return parser


def summary(result: IngestResult) -> str:
    """`IngestResult.summary()`, each quarantined file once, with where it went."""
    lines = [line for line in result.summary().splitlines()
             if not line.startswith("quarantined ")]
    where = []
    for e in result.quarantined:
        dest = e.get("quarantined_to")
        if dest is None:
            went = "could not be copied to the quarantine; the file is left where it is"
        elif e.get("source_removed", False):
            went = f"moved to {dest} (reason in {dest}.reason.txt)"
        else:
            went = f"copied to {dest}, the source left in place (reason in {dest}.reason.txt)"
        day = f" ({e['date']})" if e.get("date") else ""
        where.append(f"quarantined {e['source']}{day}: {e['reason']}\n  -> {went}")
    return "\n".join(lines[:-1] + where + lines[-1:])


def run(args: argparse.Namespace) -> int:
    """Ingest `args.source` onto `args.storage`; see DESCRIPTION for the exit status."""
    from trainer.data.ingest import ingest_path
    from trainer.data.mapping import resolve_mapping

    # A mistyped mapping is refused before anything is created.
    mapping = resolve_mapping(Share.at(args.storage), args.mapping, args.map_pairs,
                              args.timezone)
    share, created = create_share(args.storage, "fraudpipe ingest")
    if created:
        print(f"created a new share at {share.root}", file=sys.stderr)
    # Its summary lists each quarantined file: the terminal leaves out the quarantine's
    # own warning (`trainer.commands._logging.REPORTED_BY_COMMANDS`).
    result = ingest_path(args.source, share, allow_pickle=args.allow_pickle,
                         testing=args.testing, archive=args.archive, mapping=mapping)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(summary(result))
    if not result.read_any:
        print(f"fraudpipe ingest: error: no readable dataset in {args.source}", file=sys.stderr)
        return 3
    return 0
