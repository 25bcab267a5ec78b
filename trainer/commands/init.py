"""`fraudpipe init`: make a directory a share explicitly (before a worker or a flow uses it)."""

from __future__ import annotations

import argparse
import json

from trainer.commands._common import command_parser
from trainer.share.layout import create_share


def add_parser(sub) -> None:
    """Register `fraudpipe init` on the CLI."""
    command_parser(
        sub, run,
        "init", help="create a share (directory and marker); `ingest` does it too",
        description="Create ROOT (with its parents) and its marker file fraudpipe-share.json. "
                    "Every command but `ingest` and `init` refuses a storage root without "
                    "the marker, so a mistyped path or an unmounted volume is an error "
                    "instead of an empty share. A share created before the marker existed "
                    "(it has datasets/ingested.json or output/lineage.json) is recognised. "
                    "Running it on an existing share changes nothing.", creates=True)


def run(args: argparse.Namespace) -> int:
    """Run `fraudpipe init`; return the exit status."""
    share, created = create_share(args.storage, "fraudpipe init")
    if created:
        print(f"created a new share at {share.root} (marker {share.marker.name})")
    else:
        try:
            made = json.loads(share.marker.read_text())
            origin = f" (marker written {made['created_at']} by {made['created_by']})"
        except (ValueError, KeyError, TypeError):  # a marker edited by hand still counts
            origin = ""
        print(f"{share.root} is already a share{origin}; nothing changed")
    return 0
