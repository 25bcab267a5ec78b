"""`fraudpipe simulate`: write the handbook's simulated transactions, one file per day.

`--format bank-export` writes the same transactions as a bank's export instead (month
CSVs with text ids and UTC times, chargebacks a week later, the mapping):
`trainer.data.bank_export`.
"""

from __future__ import annotations

import argparse
import json
import time

from trainer.commands._common import date_arg
from trainer.data.formats import FORMATS
from trainer.errors import FraudpipeError

BANK_EXPORT = "bank-export"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `fraudpipe simulate` on the CLI."""
    parser = subparsers.add_parser(
        "simulate",
        help="generate simulated card transactions (fraud-detection handbook, chapter 3)",
        description=(
            "Generate the handbook's simulated transactions and write one file per day, "
            "<date>.parquet (canonical dtypes) or <date>.pkl (the GKE sample's layout). "
            "Same seed, same files; a shorter run is an exact prefix of a longer one. "
            "--format bank-export writes the same transactions as a bank's export: "
            "OUT/transactions/transactions-<YYYY-MM>.csv (tx_id,timestamp,card_id,"
            "merchant_id,amount: text ids, UTC times with Z, no label), "
            "OUT/chargebacks/<date>.csv (tx_id,is_fraud,reported_at: the confirmed frauds, "
            "reported 7 days after their day) and OUT/fraudpipe-mapping.json (the column "
            "mapping for fraudpipe ingest --mapping)."
        ),
    )
    parser.add_argument("--out", required=True, help="directory to write the days into")
    parser.add_argument("--start", default="2018-04-01", type=date_arg, metavar="DATE",
                        help="first day, YYYY-MM-DD (default 2018-04-01)")
    parser.add_argument("--days", type=int, default=183, help="number of days (default 183)")
    parser.add_argument("--customers", type=int, default=5_000, help="default 5000")
    parser.add_argument("--terminals", type=int, default=10_000, help="default 10000")
    parser.add_argument("--radius", type=float, default=5.0, help="default 5")
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    parser.add_argument("--format", choices=(*FORMATS, BANK_EXPORT), default="parquet",
                        dest="fmt",
                        help=f"file format, one of {', '.join((*FORMATS, BANK_EXPORT))} "
                             "(default parquet; pkl is the GKE sample's pickle layout, "
                             "ingested only with --allow-pickle; bank-export: see above)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe simulate`; return the exit status."""
    from trainer.data.bank_export import write_bank_export
    from trainer.data.simulator import SimulationConfig, simulate_config, write_day

    try:
        config = SimulationConfig(
            start=args.start,
            days=args.days,
            customers=args.customers,
            terminals=args.terminals,
            radius=args.radius,
            seed=args.seed,
        )
    except ValueError as exc:
        raise FraudpipeError(f"invalid simulation parameter: {exc}") from exc
    began = time.perf_counter()
    counted = []

    def count(days):
        for day, frame in days:
            counted.append((len(frame), int(frame["TX_FRAUD"].sum())))
            yield day, frame

    try:
        if args.fmt == BANK_EXPORT:
            write_bank_export(count(simulate_config(config)), args.out)
        else:
            for day, frame in count(simulate_config(config)):
                write_day(frame, args.out, day, args.fmt)
    except OSError as exc:
        raise FraudpipeError(f"cannot write into {args.out}: {exc}") from exc
    transactions = sum(rows for rows, _ in counted)
    frauds = sum(n for _, n in counted)
    summary = {
        "out": str(args.out),
        "format": args.fmt,
        "days": config.days,
        "transactions": transactions,
        "frauds": frauds,
        "fraud_rate": frauds / transactions if transactions else 0.0,
        "seconds": round(time.perf_counter() - began, 2),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"wrote {config.days} days to {args.out} ({args.fmt}): {transactions} transactions, "
            f"{frauds} frauds ({summary['fraud_rate']:.2%}) in {summary['seconds']} s"
        )
    return 0
