"""Where tests find the read-only reference files kept beside the repository.

CI clones the repository with `shared/` next to it (`../shared/reference/...`); a worktree
elsewhere points `FRAUDPIPE_SHARED_DIR` at that folder. The product never reads them.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    """`<shared>/reference`, where `<shared>` is `$FRAUDPIPE_SHARED_DIR` or `../shared`."""
    override = os.environ.get("FRAUDPIPE_SHARED_DIR")
    return (Path(override) if override else REPO.parent / "shared") / "reference"
