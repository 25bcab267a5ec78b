"""`fraudpipe report`: rewrite and print the run's report (Argo's final step)."""

from __future__ import annotations

import argparse

from trainer.commands._common import command_parser, print_json, share_of


def add_parser(sub) -> None:
    """Register `fraudpipe report` on the CLI."""
    parser = command_parser(sub, run, "report", help="rewrite output/report.txt and report.json",
                            description="Verify the lineage, rewrite the reports from it and "
                                        "print a summary.")
    parser.add_argument("--json", action="store_true", help="print report.json")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe report`; return the exit status."""
    from trainer.report import report_json, write_reports
    from trainer.share.lineage import Lineage, verify

    share = share_of(args)
    verify(share)
    lineage = Lineage.load(share)
    write_reports(share, lineage)
    if args.json:
        print_json(report_json(lineage))
    elif lineage.head is None:
        print(f"the report is empty: no day trained on {share.root} yet "
              f"({len(share.training_dates())} ingested day(s); fraudpipe train --storage "
              f"{share.root})")
    else:
        print(share.report_txt.read_text(), end="")
    return 0
