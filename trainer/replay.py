"""Replay: move the head back to an earlier checkpoint and train the later days again.

The chain only moves forward, so a day that arrives after later days were trained (a
late day), or a trained day whose data must change, needs a replay: the head goes back
to the last checkpoint before that day (`trainer.share.lineage.rewind` keeps the later
entries, marked superseded) and every ingested day after it is trained again in date
order. `fraudpipe replay` and the replay flow (`flows/replay.py`) both go through
`rewind_for_replay` (which also merges the late rows kept aside for the days it takes
off the chain); `trainer.backlog.replay` rewinds and trains the later days. The ingest
and the step use `replay_command` to name the replay a day needs.
"""

from __future__ import annotations

import datetime as dt

from trainer.errors import FraudpipeError
from trainer.late_rows import apply_held
from trainer.share.layout import Share
from trainer.share.lineage import Entry, Lineage, rewind

#: `--from` value that rewinds to before the first day (everything is retrained).
START = "start"


def replay_point(lineage: Lineage, day: dt.date) -> dt.date | None:
    """The chain's last day before `day`: the checkpoint a replay including `day` keeps."""
    before = [e.date for e in lineage.chain() if e.date < day]
    return max(before) if before else None


def replay_command(share: Share, day: dt.date, *, rewind_only: bool = False) -> str:
    """The exact `fraudpipe replay` command that brings `day` onto the chain."""
    point = replay_point(Lineage.load(share), day)
    start = point.isoformat() if point else START
    extra = " --rewind-only" if rewind_only else ""
    return f"fraudpipe replay --from {start}{extra} --storage {share.root}"


def late_days(share: Share) -> list[dt.date]:
    """Ingested days not on the chain but before its head: only a replay can train them."""
    lineage = Lineage.load(share)
    head = lineage.head_entry
    if head is None:
        return []
    trained = lineage.dates()
    return [d for d in share.training_dates() if d < head.date and d not in trained]


def late_days_warning(share: Share) -> str | None:
    """One line naming the late days and the exact command that trains them, or None."""
    late = late_days(share)
    if not late:
        return None
    return (f"warning: {len(late)} late day(s) not trained: "
            f"{', '.join(d.isoformat() for d in late)} arrived after later days were "
            f"trained. To include them (this retrains every day after them): "
            f"{replay_command(share, late[0])}")


def parse_from(text: str) -> dt.date | None:
    """`--from` / `from_date`: a YYYY-MM-DD day on the chain, or "start" (None)."""
    if text == START:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise FraudpipeError(f"replay from {text!r}: expected YYYY-MM-DD or {START!r}") from exc


def rewind_for_replay(share: Share, to_day: dt.date | None) -> list[Entry]:
    """Move the head back to `to_day`'s checkpoint (None: before the first day).

    Late rows kept aside for the days taken off the chain are merged into them
    (`trainer.late_rows.apply_held`): the replay trains each day on all its rows.

    Returns:
        The superseded entries (still in the lineage, their checkpoints renamed aside).

    Raises:
        LineageError: `to_day` has no checkpoint on the active chain.
    """
    superseded = rewind(share, to_day)
    apply_held(share)
    return superseded
