"""`fraudpipe train`: every ingested day not yet trained, in date order."""

from __future__ import annotations

import argparse

from trainer.commands._common import add_learner, command_parser, date_arg, print_json, share_of


def add_parser(sub) -> None:
    """Register `fraudpipe train` on the CLI."""
    parser = command_parser(sub, run, "train", help="train every ingested day not yet on the chain",
                            description="Run `fraudpipe step` for each ingested day after "
                                        "the head, oldest first. On a terminal a progress "
                                        "bar shows the days going by; elsewhere one line "
                                        "per day does.")
    parser.add_argument("--through", metavar="DATE", type=date_arg,
                        help="stop after this day (default: the last ingested day)")
    add_learner(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe train`; return the exit status."""
    from trainer.backlog import train_all
    from trainer.commands._progress import ProgressLines, progress
    from trainer.share.lineage import Lineage

    share = share_of(args)
    with progress() as bar:
        # Without a terminal and without -v, nothing else shows the days going by.
        lines = None if bar or args.json or args.verbose else ProgressLines()
        results = train_all(share, through=args.through, learner=args.learner,
                            on_step=None if args.json else bar or lines)
    report_late_days(share)
    if args.json:
        print_json([r.to_json() for r in results])
        return 0
    trained = [r for r in results if r.status == "trained"]
    if not results:
        ingested = share.training_dates()
        head = Lineage.load(share).head_entry
        if not ingested:
            print(f"nothing to train: no dataset ingested on {share.root} yet "
                  f"(fraudpipe ingest --source DIR --storage {share.root})")
        else:
            print(f"nothing to train: {len(ingested)} ingested day(s) on {share.root}, "
                  f"none after the head ({head.date if head else 'no checkpoint yet'}"
                  + (f", --through {args.through}" if args.through else "") + ")")
        return 0
    total = sum(r.seconds for r in results)
    print(f"trained {len(trained)} day(s) in {total:.1f}s; report: {share.report_txt}")
    return 0



def report_late_days(share) -> None:
    """Warn on stderr about ingested days before the head: only a replay trains them."""
    import sys

    from trainer.replay import late_days_warning

    warning = late_days_warning(share)
    if warning:
        print(warning, file=sys.stderr)
