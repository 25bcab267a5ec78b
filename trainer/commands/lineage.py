"""`fraudpipe lineage`: the verified chain from the first checkpoint to the head."""

from __future__ import annotations

import argparse

from trainer.commands._common import add_storage, print_json, share_of


def add_parser(sub) -> None:
    """Register `fraudpipe lineage` on the CLI."""
    parser = sub.add_parser(
        "lineage", help="verify and print the chain of checkpoints",
        description="Walk the chain from the first checkpoint to the head checking every "
                    "sha256 and parent link; exit 4 naming the first broken link.")
    add_storage(parser)
    parser.add_argument("--json", action="store_true", help="print the chain as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe lineage`; return the exit status."""
    from trainer.lineage import Lineage, verify

    share = share_of(args)
    chain = verify(share)
    if args.json:
        print_json({
            "head": Lineage.load(share).head,
            "chain": [{"date": e.date, "checkpoint": e.checkpoint, "sha256": e.sha256,
                       "parent_sha256": e.parent_sha256, "dataset_sha256": e.dataset_sha256,
                       "learner": e.learner, "gap_days": e.gap_days, "metrics": e.metrics}
                      for e in chain],
        })
    elif not chain:
        print(f"no checkpoint yet on {share.root}: nothing trained "
              f"({len(share.training_dates())} ingested day(s); fraudpipe train --storage "
              f"{share.root})")
    else:
        for e in chain:
            gap = f" (after a gap of {e.gap_days} day(s))" if e.gap_days else ""
            print(f"{e.date}  {e.sha256[:12]}  <- {str(e.parent_sha256)[:12]:12}  "
                  f"{e.checkpoint}{gap}")
        print(f"{len(chain)} checkpoint(s), all verified")
    return 0
