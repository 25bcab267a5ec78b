"""`fraudpipe train`: every ingested day not yet trained, in date order."""

from __future__ import annotations

import argparse

from trainer.commands._common import add_storage, date_arg, print_json, share_of


def add_parser(sub) -> None:
    parser = sub.add_parser("train", help="train every ingested day not yet on the chain",
                            description="Run `fraudpipe step` for each ingested day after "
                                        "the head, oldest first, with a progress bar.")
    add_storage(parser)
    parser.add_argument("--through", metavar="DATE", type=date_arg,
                        help="stop after this day")
    parser.add_argument("--learner", help="learner for a new chain (default: trainer.model.DEFAULT_LEARNER; see README)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trainer.backlog import progress_bar, train_all

    share = share_of(args)
    results = train_all(share, through=args.through, learner=args.learner,
                        on_step=None if args.json else progress_bar())
    if args.json:
        print_json([r.to_json() for r in results])
    else:
        trained = [r for r in results if r.status == "trained"]
        total = sum(r.seconds for r in results)
        print(f"trained {len(trained)} day(s) in {total:.1f}s; report: {share.report_txt}")
    return 0
