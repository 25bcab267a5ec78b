"""Fault points for crash tests: kill or pause this process at a named point of a step.

`FRAUDPIPE_FAULT=after_checkpoint` (or `name:probability`, several separated by commas)
makes `fault_point("after_checkpoint")` SIGKILL the process there. The crash tests use it
to stop a step between any two writes and check the share stays consistent.
`name:pause` SIGSTOPs the process there instead, after saying so on stderr, so a test can
hold a step at a known point (e.g. just before its commit) for as long as it needs.
Unset (always, in production) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import random
import signal
import sys

POINTS = (
    "before_state_rename",  # temp feature state written and fsynced, not yet renamed
    "before_checkpoint_rename",  # temp checkpoint written and fsynced, not yet renamed
    "before_commit",  # checkpoint written, lineage lock not yet taken
    "after_state",  # feature state under its final name, checkpoint not yet
    "after_checkpoint",  # checkpoint under its final name, lineage not committed
    "after_commit",  # head moved, report and scores index not yet rewritten
)

#: The line `fault_point` writes to stderr before pausing, followed by " pid <pid>": tests
#: wait for it, then for that process to be stopped (the line comes just before the stop).
PAUSED = "fault point {point}: paused (SIGSTOP)"


def _parse(spec: str) -> dict[str, float | str]:
    rules: dict[str, float | str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, action = part.partition(":")
        if name not in POINTS:
            raise ValueError(f"FRAUDPIPE_FAULT: unknown point {name!r}; expected one of {POINTS}")
        rules[name] = "pause" if action == "pause" else float(action) if action else 1.0
    return rules


def fault_point(point: str) -> None:
    """SIGKILL (or, with `:pause`, SIGSTOP) this process if FRAUDPIPE_FAULT selects `point`."""
    spec = os.environ.get("FRAUDPIPE_FAULT")
    if not spec:
        return
    rule = _parse(spec).get(point, 0.0)
    if rule == "pause":
        print(f"{PAUSED.format(point=point)} pid {os.getpid()}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
    elif isinstance(rule, float) and rule and random.random() < rule:
        os.kill(os.getpid(), signal.SIGKILL)
