"""`fraudpipe relabel`: write late labels into the training datasets and replay the chain."""

from __future__ import annotations

import argparse

from trainer.commands._common import add_learner, command_parser, print_json, share_of


def add_parser(sub) -> None:
    """Register `relabel` on the CLI."""
    parser = command_parser(
        sub, run,
        "relabel", help="apply late labels and late rows: rewrite the datasets, replay "
                        "the chain",
        description="Late labels are labels stored for a day whose training dataset "
                    "already exists and that disagree with it; late rows are new rows of a "
                    "trained day, kept aside by the ingest (`fraudpipe days` counts both). "
                    "This rewinds the head to the last checkpoint before the first trained "
                    "day they change (as `fraudpipe replay --rewind-only`), merges the late "
                    "rows into their days, writes the late labels into the training "
                    "datasets (the manifest entry of each keeps the previous sha256), then "
                    "trains every later day again. Conflicting labels are never applied. "
                    "Stop other training (workers, flows) first.")
    parser.add_argument("--rewind-only", action="store_true",
                        help="rewrite the datasets and rewind, but leave the training to "
                             "`fraudpipe train` or the queue")
    add_learner(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Apply the late labels, then (without --rewind-only) train every day after them."""
    from trainer.backlog import train_all
    from trainer.relabel import apply_late_labels

    share = share_of(args)
    applied = apply_late_labels(share)
    changed = applied["days"] or applied["rows"]
    results = ([] if args.rewind_only or not changed
               else train_all(share, learner=args.learner))
    if args.json:
        print_json({**applied, "results": [r.to_json() for r in results]})
        return 0
    if not changed:
        print("no late label or late row to apply")
        return 0
    if applied["rows"]:
        print(f"late rows merged into {len(applied['rows'])} day(s): "
              + ", ".join(f"{d['date']} ({d['rows']} from {', '.join(d['sources'])})"
                          for d in applied["rows"]))
    if applied["days"]:
        print(f"late labels written into {len(applied['days'])} training dataset(s): "
              + ", ".join(f"{d['date']} ({d['labels']})" for d in applied["days"]))
    if applied["rewound_to"]:
        print(f"head rewound to {applied['rewound_to']}; superseded (kept in the lineage): "
              f"{', '.join(applied['superseded']) or 'none'}")
    trained = [r.date for r in results if r.status == "trained"]
    print(f"trained {len(trained)} day(s)" + (f": {trained[0]} .. {trained[-1]}" if trained
                                               else ""))
    return 0
