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
import os
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version

from trainer.commands._logging import command_logging
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
    add_logging_options(parser, default_file=os.environ.get("FRAUDPIPE_LOG_FILE"),
                        default_verbosity=0)
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
    for command in sub.choices.values():  # also after the command: `fraudpipe train -v`
        add_logging_options(command, default_file=argparse.SUPPRESS,
                            default_verbosity=argparse.SUPPRESS)
    return parser


def add_logging_options(parser: argparse.ArgumentParser, default_file: str | None,
                        default_verbosity: int | str) -> None:
    """-v/--verbose and --log-file (see `trainer.commands._logging`)."""
    parser.add_argument("-v", "--verbose", action="count", default=default_verbosity,
                        help="log lines with timestamps on stderr: -v info, -vv debug "
                             "(default: each message once, and warnings)")
    parser.add_argument("--log-file", metavar="FILE", default=default_file,
                        help="also append the log lines (info; debug with -vv) to FILE "
                             "(env FRAUDPIPE_LOG_FILE)")


def main(argv: list[str] | None = None) -> int:
    """Run one command; a `FraudpipeError` becomes its message and its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with command_logging(args.command, args.verbose, args.log_file,
                         logs_are_output=getattr(args, "logs_are_output", False)):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
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
