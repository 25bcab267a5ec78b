"""`fraudpipe replay`: rewind the head to an earlier checkpoint and train the later days."""

from __future__ import annotations

import argparse

from trainer.commands._common import add_learner, command_parser, print_json, share_of


def add_parser(sub) -> None:
    """Register `replay` on the CLI."""
    parser = command_parser(
        sub, run,
        "replay", help="rewind the head to a day's checkpoint and retrain every later day",
        description="Move the head back to the checkpoint of --from (\"start\": before the "
                    "first day); the later entries stay in output/lineage.json marked "
                    "superseded and their checkpoints are renamed aside. Then train every "
                    "ingested day after --from in date order, late days included. Needs "
                    "neither Prefect nor Redis (the replay flow runs the same code). "
                    "Stop other training (workers, flows) first.")
    parser.add_argument("--from", dest="from_day", metavar="DATE", required=True,
                        help="the day whose checkpoint becomes the head, or \"start\"")
    parser.add_argument("--rewind-only", action="store_true",
                        help="only move the head back (e.g. to ingest a changed day before "
                             "training with `fraudpipe train`)")
    add_learner(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Rewind, then (without --rewind-only) train every day after --from."""
    from trainer.backlog import replay
    from trainer.replay import parse_from, rewind_for_replay
    from trainer.step import StepResult

    share = share_of(args)
    to_day = parse_from(args.from_day)
    results: list[StepResult] = []
    if args.rewind_only:
        superseded = rewind_for_replay(share, to_day)
    else:
        superseded, results = replay(share, to_day, learner=args.learner)
    if args.json:
        print_json({"head": to_day, "superseded": [e.date.isoformat() for e in superseded],
                    "results": [r.to_json() for r in results]})
        return 0
    print(f"head rewound to {to_day or 'before the first day'}; superseded (kept in the "
          f"lineage): {', '.join(e.date.isoformat() for e in superseded) or 'none'}")
    if args.rewind_only:
        print(f"train the later days with: fraudpipe train --storage {share.root}")
    else:
        trained = [r.date for r in results if r.status == "trained"]
        print(f"trained {len(trained)} day(s)"
              + (f": {trained[0]} .. {trained[-1]}" if trained else ""))
    return 0
