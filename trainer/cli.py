"""The `fraudpipe` command line: one sub-command per module.

Commands of the trainer live in `trainer/commands/`. Commands that need the
orchestrators (rendering Argo templates, validating manifests) live in their own packages
and plug in through the `fraudpipe.commands` entry-point group, so this package never
imports Prefect or Hera and the CLI still lists them when they are installed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version

from trainer.errors import FraudpipeError, storage_error

#: Built-in commands, in the order `fraudpipe --help` lists them.
BUILTIN = [
    "init",
    "simulate",
    "ingest",
    "step",
    "train",
    "labels",
    "close",
    "relabel",
    "score",
    "alerts",
    "serve",
    "evaluate",
    "lineage",
    "days",
    "replay",
    "fsck",
    "report",
    "queue",
    "worker",
]


def package_version() -> str:
    """The installed fraudpipe version; "unknown" in a tree that was never installed."""
    try:
        return version("fraudpipe")
    except PackageNotFoundError:
        return "unknown (not installed: make setup)"


def build_parser() -> argparse.ArgumentParser:
    """The `fraudpipe` parser: the built-in commands, then the installed plug-ins."""
    parser = argparse.ArgumentParser(
        prog="fraudpipe",
        description="Daily warm-start fraud-detection training on a shared storage root.",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging (default: info)")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in BUILTIN:
        module = importlib.import_module(f"trainer.commands.{name}")
        module.add_parser(sub)
    for entry in entry_points(group="fraudpipe.commands"):
        try:
            add_parser = entry.load()
        except ImportError as exc:  # the step image may leave an orchestrator out
            logging.getLogger(__name__).debug("command %s unavailable: %s", entry.name, exc)
            continue
        add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a `FraudpipeError` becomes its message and its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except FraudpipeError as exc:
        print(f"fraudpipe {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a full share: retryable, and it names the share
        translated = storage_error(exc, getattr(args, "storage", None))
        if translated is None:
            raise
        print(f"fraudpipe {args.command}: error: {translated}", file=sys.stderr)
        return translated.exit_code


if __name__ == "__main__":
    sys.exit(main())
