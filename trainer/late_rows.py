"""Applying the late rows kept aside for trained days, once those days leave the chain.

The ingest keeps new rows of a trained day aside (`trainer.data.held_parts`). When the
chain is rewound to before the day (`trainer.replay.rewind_for_replay`: `fraudpipe
relabel`, `fraudpipe replay`, the replay flow), `apply_held` makes the copy aside the
day's dataset, so the replay trains the day on all its rows. A day that arrived without
labels gets its training dataset written again from its rows and labels
(`trainer.labels.refresh_completed`): a label stored for one of the new rows is then a
late label, which `fraudpipe relabel` writes in too.
"""

from __future__ import annotations

import datetime as dt
import logging

from trainer.data.held_parts import held_days, promote
from trainer.errors import FraudpipeError
from trainer.labels import refresh_completed
from trainer.share.layout import Share
from trainer.share.lineage import Lineage
from trainer.share.locks import file_lock, try_exclusive_lock
from trainer.share.manifest import read_manifest

log = logging.getLogger(__name__)


def apply_held(share: Share) -> list[dict]:
    """Merge the late rows kept aside into every day that is not on the chain.

    Returns:
        The days applied (`held_days` items); days still on the chain keep theirs.

    Raises:
        FraudpipeError: a day to change is being trained right now, or its copy aside is
            missing or altered.
    """
    applied = []
    for held in held_days(share, read_manifest(share)):
        day = dt.date.fromisoformat(held["date"])
        with (file_lock(share.ingest_lock),
              try_exclusive_lock(share.training_lock(day)) as free):
            if not free:
                raise FraudpipeError(
                    f"{day} is being trained right now; its late rows were not applied. "
                    f"Run fraudpipe relabel --storage {share.root} once the step ends")
            with file_lock(share.lineage_lock):
                if Lineage.load(share).entry_for(day) is not None:
                    continue
                promote(share, held["kind"], day)
        if held["kind"] == "arrived":
            refresh_completed(share, day)
        log.info("%s: %d late row(s) from %s merged into its dataset", day, held["rows"],
                 ", ".join(held["sources"]))
        applied.append(held)
    return applied
