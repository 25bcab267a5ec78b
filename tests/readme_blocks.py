"""The README's ```bash blocks, as tests/integration/test_readme_commands.py (the blocks that
run alone) and test_readme_on_stack.py (the blocks that need the `make up` stack) run them.

Every ```bash block of README.md is either run or skipped with its reason: a block that
needs a cluster or a running stack is preceded by the line
`<!-- readme-test: skip: REASON -->`; one preceded by
`<!-- readme-test: on the make-up stack: REASON -->` runs against the session's stack.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SKIP = re.compile(r"<!-- readme-test: skip: (.+?) -->\s*$")
ON_STACK = re.compile(r"<!-- readme-test: on the make-up stack: (.+?) -->\s*$")
#: The Prefect port the README's stack blocks name (`make up`'s default PREFECT_PORT).
README_PREFECT_PORT = 4280
#: Commands that start long-lived services or need a cluster: a block holding one must carry
#: a skip marker, and is never run without it (the test would hang or reach out).
NEEDS_MORE = re.compile(
    r"^\s*(?:\S+/)?(?:make\s+(?:up|run|test|test-slow|bench|down|status)\b|kubectl\b|argo\b|"
    r"gcloud\b|docker\b|prefect\s+(?:server|worker|deploy|deployment|work-pool|block)\b|"
    r"prefect\s+--no-prompt\b)", re.M)
DONE = "@@readme-block {} exit 0"


@dataclass(frozen=True)
class Block:
    index: int
    line: int
    text: str
    skip: str | None
    on_stack: str | None = None


def bash_blocks(path: Path = README) -> list[Block]:
    """Every ```bash block with its line number and its skip reason (None: it runs)."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            body = []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            above = lines[start - 1].strip() if start else ""
            marker, stack = SKIP.match(above), ON_STACK.match(above)
            blocks.append(Block(len(blocks), start + 1, "\n".join(body) + "\n",
                                marker.group(1) if marker else None,
                                stack.group(1) if stack else None))
        i += 1
    return blocks


BLOCKS = bash_blocks()


def fresh_shell_env(tmp: Path) -> dict[str, str]:
    """What a new terminal has: no virtualenv, no fraudpipe or Prefect settings."""
    keep = {"HOME", "LANG", "LC_ALL", "USER", "LOGNAME", "SHELL", "TERM"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env["TMPDIR"] = str(tmp)
    return env


def assert_block_ran(block: Block, proc) -> None:
    """The block's end marker was printed: every command of it exited 0."""
    assert DONE.format(block.index) in proc.stdout, (
        f"README.md block at line {block.line} failed (exit {proc.returncode}):\n"
        f"{block.text}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")
