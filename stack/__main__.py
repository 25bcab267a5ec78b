"""`python -m stack up|serve|status|down|prepare|run|check-lock` (the Makefile's targets)."""

from __future__ import annotations

import argparse
import sys

from stack import embedded, launcher, lockfile


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command; its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:  # the embedded run keeps its own command line
        return embedded.main(argv[1:])
    cli = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    subparsers = cli.add_subparsers(required=True, metavar="COMMAND")
    subparsers.add_parser("run", help="the main job (`make run`); `run --help` for options")
    launcher.add_parsers(subparsers)
    lockfile.add_parser(subparsers)
    args = cli.parse_args(argv)
    return int(args.function(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
