"""Compare the installed packages with a lock file.

`make lock` (`uv pip compile --universal --generate-hashes` of pyproject.toml) writes
requirements-dev.lock (with the dev and kubernetes extras; `make setup` and CI install
it) and requirements.lock (runtime and kubernetes; deployments/Dockerfile installs it).
Each pins every package, direct or transitive, with its hashes. This check says whether an
environment still matches its lock: a package missing, at another version, or installed though
the lock does not name it (a drifted or hand-patched environment).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parents[1] / "requirements-dev.lock"
#: Installed by `python -m venv` and `pip install -e .` themselves, not by the lock.
INSTALLER_PACKAGES = frozenset({"pip", "setuptools", "wheel", "fraudpipe"})
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


@dataclass(frozen=True)
class LockDifference:
    """What differs between the installed packages and the lock (all empty: none)."""

    missing: dict[str, str]
    other_version: dict[str, tuple[str, str]]  # name: (locked, installed)
    not_locked: dict[str, str]

    def __bool__(self) -> bool:
        return bool(self.missing or self.other_version or self.not_locked)

    def describe(self) -> str:
        """One line per difference."""
        lines = [f"  missing: {name}=={version}" for name, version in self.missing.items()]
        lines += [f"  {name}: locked {locked}, installed {installed}"
                  for name, (locked, installed) in self.other_version.items()]
        lines += [f"  not in the lock: {name}=={version}"
                  for name, version in self.not_locked.items()]
        return "\n".join(lines)


def locked_versions(lock: Path = LOCK) -> dict[str, str]:
    """Canonical name -> version of every lock entry whose marker holds here."""
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        match = _PIN.match(line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker is None or Marker(marker).evaluate():
            pins[canonicalize_name(name)] = version
    return pins


def installed_versions() -> dict[str, str]:
    """Canonical name -> version of every distribution importable from this interpreter."""
    return {canonicalize_name(dist.metadata["Name"]): dist.version
            for dist in metadata.distributions()}


def compare(lock: Path = LOCK) -> LockDifference:
    """The difference between this interpreter's packages and the lock."""
    locked, installed = locked_versions(lock), installed_versions()
    return LockDifference(
        missing={n: v for n, v in locked.items() if n not in installed},
        other_version={n: (v, installed[n]) for n, v in locked.items()
                       if n in installed and installed[n] != v},
        not_locked={n: v for n, v in installed.items()
                    if n not in locked and n not in INSTALLER_PACKAGES},
    )


def check(args: argparse.Namespace) -> int:
    """`python -m stack check-lock`: 0 when the environment matches the lock, else 1."""
    difference = compare(Path(args.lock))
    if difference:
        print(f"the installed packages differ from {args.lock}:\n{difference.describe()}\n"
              "reinstall from the lock (`rm -rf .venv && make setup`), or after a change "
              "to pyproject.toml refresh it (`make lock`)", file=sys.stderr)
        return 1
    print(f"installed packages match {args.lock} ({len(locked_versions(Path(args.lock)))})")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """The `check-lock` command of `python -m stack`."""
    command = subparsers.add_parser("check-lock",
                                    help="compare the installed packages with the lock")
    command.add_argument("--lock", default=str(LOCK),
                         help="the lock file (default requirements-dev.lock; the step image "
                         "checks requirements.lock)")
    command.set_defaults(function=check)
