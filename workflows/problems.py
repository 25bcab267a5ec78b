"""A reason a manifest is rejected: what every check of `fraudpipe validate` reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason a manifest is rejected."""

    file: str
    """The manifest file."""
    document: int
    """Index of the YAML document in the file (0 for single-document files)."""
    path: str
    """JSON path of the bad field, `$` for the document itself."""
    message: str
    """What is wrong and what was expected."""

    def __str__(self) -> str:
        return f"{self.file}[{self.document}]: {self.path}: {self.message}"
