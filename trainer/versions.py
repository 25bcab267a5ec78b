"""Library versions recorded with every checkpoint, so a checkpoint can be reproduced."""

from __future__ import annotations

import functools
import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("fraudpipe", "scikit-learn", "numpy", "pandas", "pyarrow", "skops")


def library_versions() -> dict[str, str]:
    """Python's and each of `PACKAGES`' version ("not installed" when missing)."""
    return dict(_loaded_versions())  # a copy: callers keep it in an entry and may change it


@functools.cache
def _loaded_versions() -> dict[str, str]:
    # Read once per process: each lookup scans the installed distributions (~2 ms for all,
    # every step of a backfill), and the modules this process imported keep their version
    # even if the packages on disk are upgraded meanwhile.
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
