"""`fraudpipe step`: train the chain on one day (or a few, in date order)."""

from __future__ import annotations

import argparse

from trainer.commands._common import add_learner, command_parser, date_arg, print_json, share_of


def add_parser(sub) -> None:
    """Register `fraudpipe step` on the CLI."""
    parser = command_parser(
        sub, run,
        "step", help="train the head checkpoint on one day and commit the new head",
        description="Load the head checkpoint, score the day before training on it, "
                    "partial_fit, write the checkpoint atomically and commit it by "
                    "compare-and-swap. Several --dataset values run one step each, oldest "
                    "first (Argo batches days per pod this way). A day already trained is "
                    "a no-op; a day before the head exits 3 (use replay).")
    parser.add_argument("--dataset", metavar="DATE", type=date_arg, action="append",
                        required=True, help="the day to train on (repeatable)")
    add_learner(parser)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe step`; return the exit status."""
    from trainer.step import run_step

    share = share_of(args)
    results = [run_step(share, day, learner=args.learner) for day in sorted(set(args.dataset))]
    if args.json:
        print_json([r.to_json() for r in results])
    else:
        for r in results:
            sha = (r.checkpoint_sha256 or "")[:12]
            note = ("already on the chain, nothing to do" if r.status == "skipped" else
                    f"checkpoint {sha} in {r.seconds:.2f}s")
            print(f"{r.date}: {r.status}: {note}")
    return 0
