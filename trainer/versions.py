"""Library versions recorded with every checkpoint, so a checkpoint can be reproduced."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("fraudpipe", "scikit-learn", "numpy", "pandas", "pyarrow", "skops")


def library_versions() -> dict[str, str]:
    """Python's and each of `PACKAGES`' version ("not installed" when missing)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
