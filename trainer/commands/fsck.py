"""`fraudpipe fsck`: what crashes left on the share (temp files, orphan checkpoints), quarantine."""

from __future__ import annotations

import argparse

from trainer.commands._common import command_parser, print_json, share_of


def add_parser(sub) -> None:
    """Register `fsck` on the CLI."""
    parser = command_parser(
        sub, run,
        "fsck", help="list (--clean: remove) temp files and orphan checkpoints; quarantine",
        description="List the .tmp-* files killed writers left, the checkpoints no lineage "
                    "entry names (orphans), the superseded ones (kept by replay) and the "
                    "quarantined files with their reasons. --clean removes the temp files "
                    "older than an hour and the orphans; it never touches a checkpoint the "
                    "lineage names, the datasets or the quarantine.")
    parser.add_argument("--clean", action="store_true",
                        help="remove old temp files and orphan checkpoints")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Print the findings; exit 0 (findings are not errors)."""
    from trainer.repair import fsck

    share = share_of(args)
    report = fsck(share, clean=args.clean)
    if args.json:
        print_json(report.to_json())
        return 0
    verb = "removed" if args.clean else "found"
    for label, items in (("temp file", report.temp_files),
                         ("orphan checkpoint", report.orphan_checkpoints)):
        for item in items:
            print(f"{verb} {label}: {item}")
    for item in report.recent_temp_files:
        print(f"recent temp file (maybe in use, kept): {item}")
    for item in report.superseded_checkpoints:
        print(f"superseded checkpoint (kept by replay): {item}")
    for q in report.quarantine:
        print(f"quarantined: {q['file']}: {q['reason']}")
    print(f"head feature state: {report.feature_state}")
    print(f"{len(report.temp_files)} temp file(s), {len(report.orphan_checkpoints)} orphan "
          f"checkpoint(s), {len(report.quarantine)} quarantined file(s)"
          + ("" if args.clean or not (report.temp_files or report.orphan_checkpoints)
             else f"; remove them with: fraudpipe fsck --clean --storage {share.root}"))
    return 0
