"""Fault points for crash tests: kill this process at a named point of a step.

`FRAUDPIPE_FAULT=after_checkpoint` (or `name:probability`, several separated by commas)
makes `maybe_crash("after_checkpoint")` SIGKILL the process there. The crash tests use
it to stop a step between any two writes and check the share stays consistent. Unset
(always, in production) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import random
import signal

POINTS = (
    "before_checkpoint_rename",  # temp checkpoint written and fsynced, not yet renamed
    "after_checkpoint",  # checkpoint under its final name, lineage not committed
    "after_commit",  # head moved, report and scores index not yet rewritten
)


def _parse(spec: str) -> dict[str, float]:
    rules = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, prob = part.partition(":")
        if name not in POINTS:
            raise ValueError(f"FRAUDPIPE_FAULT: unknown point {name!r}; expected one of {POINTS}")
        rules[name] = float(prob) if prob else 1.0
    return rules


def maybe_crash(point: str) -> None:
    """SIGKILL this process if FRAUDPIPE_FAULT selects `point`."""
    spec = os.environ.get("FRAUDPIPE_FAULT")
    if not spec:
        return
    probability = _parse(spec).get(point, 0.0)
    if probability and random.random() < probability:
        os.kill(os.getpid(), signal.SIGKILL)
