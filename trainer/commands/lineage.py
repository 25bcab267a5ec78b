"""`fraudpipe lineage`: the verified chain from the first checkpoint to the head."""

from __future__ import annotations

import argparse

from trainer.commands._common import command_parser, print_json, share_of


def add_parser(sub) -> None:
    """Register `fraudpipe lineage` on the CLI."""
    parser = command_parser(
        sub, run,
        "lineage", help="verify and print the chain of checkpoints",
        description="Walk the chain from the first checkpoint to the head checking every "
                    "sha256 and parent link; exit 4 naming the first broken link.")
    parser.add_argument("--repair", action="store_true",
                        help="rebuild a lost or damaged lineage.json from report.json and the "
                             "checkpoints' sha256, or move the head back before a broken "
                             "link; prints what it could not prove (see trainer/repair.py)")
    parser.add_argument("--json", action="store_true", help="print the chain as JSON")


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe lineage`; return the exit status."""
    from trainer.share.lineage import Lineage, verify

    if args.repair:
        return run_repair(args)
    share = share_of(args)
    chain = verify(share)
    if args.json:
        print_json({
            "head": Lineage.load(share).head,
            "chain": [{"date": e.date.isoformat(), "checkpoint": e.checkpoint, "sha256": e.sha256,
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


def run_repair(args: argparse.Namespace) -> int:
    """`--repair`: exit 0 when the repaired lineage verifies (unproven parts are listed)."""
    from trainer.repair import repair_lineage
    from trainer.share.layout import open_share
    from trainer.share.lineage import verify

    share = open_share(args.storage, lineage_may_be_missing=True)
    report = repair_lineage(share)
    verify(share)
    if args.json:
        print_json(report.to_json())
        return 0
    for line in report.actions:
        print(line)
    for line in report.unproven:
        print(f"could not prove: {line}")
    print(f"{len(report.chain)} checkpoint(s) on the chain, all verified")
    return 0
