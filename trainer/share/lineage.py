"""The lineage: the authoritative record of what has been trained, kept on the share.

`output/lineage.json` lists every committed checkpoint with its parent, so the chain
from the first day to the head can be walked and verified (sha256 of every checkpoint).
The head moves only by compare-and-swap under a lock: a step commits its checkpoint only
if the head is still the parent it started from, so two writers can never fork the chain.
Redis replication is asynchronous (docs/facts.md#redis-and-memorystore), so the queue is only the
work list;
this file is what says which days are trained.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from trainer.errors import HeadMovedError, LineageDamagedError, LineageError
from trainer.share.files import atomic_write_text, records_json, sha256_file
from trainer.share.layout import Share
from trainer.share.locks import file_lock

FORMAT = 1


class EntryStatus(StrEnum):
    """Whether an entry is on the active chain or was left behind by a replay."""

    ACTIVE = "active"
    SUPERSEDED = "superseded"



@dataclass
class Entry:
    """One committed checkpoint."""

    date: dt.date
    checkpoint: str
    """Path of the checkpoint relative to the storage root."""
    sha256: str
    parent_sha256: str | None
    dataset_sha256: str
    learner: str
    metrics: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    gap_days: int = 0
    """Days missing between the parent's date and this one (0 when consecutive)."""
    committed_at: str = ""
    status: EntryStatus = EntryStatus.ACTIVE
    feature_state_sha256: str | None = None
    """sha256 of the feature state the step wrote (`Share.feature_state(day)`); None in
    entries written before the state existed: the next step rebuilds it."""

    def __post_init__(self) -> None:
        # JSON gives plain text for both
        self.status = EntryStatus(self.status)
        if isinstance(self.date, str):
            self.date = dt.date.fromisoformat(self.date)

    def to_json(self) -> dict:
        """The entry as stored in `lineage.json` (the date as YYYY-MM-DD)."""
        # not dataclasses.asdict: its deep copy of every entry's metrics costs more than
        # the encoding, and the whole lineage is written after every step
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {
            "date": self.date.isoformat(), "status": str(self.status)}


@dataclass
class Lineage:
    """All entries ever committed, and the head of the active chain."""

    head: str | None = None
    """sha256 of the head checkpoint, or None before the first step."""
    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def load(cls, share: Share) -> Lineage:
        """The lineage on `share` (empty before the first commit); unknown keys are ignored."""
        try:
            raw = json.loads(share.lineage.read_text())
        except FileNotFoundError:
            return cls()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LineageDamagedError(
                f"{share.lineage} is not valid JSON ({exc}); repair it with: fraudpipe "
                f"lineage --repair --storage {share.root}") from exc
        fix = f"repair it with: fraudpipe lineage --repair --storage {share.root}"
        if not isinstance(raw, dict):
            raise LineageDamagedError(
                f"{share.lineage} holds a JSON {type(raw).__name__}, expected an object with "
                f"format, head and entries; {fix}")
        if raw.get("format") != FORMAT:
            raise LineageDamagedError(
                f"{share.lineage}: format {raw.get('format')!r}, expected {FORMAT}; {fix}")
        if not isinstance(raw.get("entries"), list) or not isinstance(raw.get("head"),
                                                                       str | None):
            raise LineageDamagedError(
                f"{share.lineage}: expected a list of entries and a head sha256 (or null); "
                f"{fix}")
        return cls(head=raw["head"], entries=[_entry(share, i, e, fix)
                                              for i, e in enumerate(raw["entries"])])

    def save(self, share: Share) -> None:
        """Write `lineage.json` atomically (callers hold the lineage lock)."""
        atomic_write_text(share.lineage, records_json(
            {"format": FORMAT, "head": self.head}, "entries", [e.to_json() for e in self.entries]))

    def by_sha(self, sha256: str) -> Entry | None:
        """The latest entry for the checkpoint `sha256`, or None."""
        for entry in reversed(self.entries):
            if entry.sha256 == sha256:
                return entry
        return None

    @property
    def head_entry(self) -> Entry | None:
        """The entry of the head checkpoint (None for an empty chain)."""
        return self.by_sha(self.head) if self.head else None

    def chain(self) -> list[Entry]:
        """The active chain, first day first, following parent links from the head."""
        chain: list[Entry] = []
        sha = self.head
        while sha is not None:
            entry = self.by_sha(sha)
            if entry is None:
                raise LineageError(
                    f"lineage names checkpoint {sha[:12]}... but has no entry for it")
            chain.append(entry)
            sha = entry.parent_sha256
            if len(chain) > len(self.entries):
                raise LineageError("lineage has a cycle")
        return chain[::-1]

    def dates(self) -> set[dt.date]:
        """The days on the active chain."""
        return {e.date for e in self.chain()}

    def entry_for(self, day: dt.date) -> Entry | None:
        """The active chain's entry for `day`, or None."""
        for entry in self.chain():
            if entry.date == day:
                return entry
        return None


def _entry(share: Share, index: int, raw: object, fix: str) -> Entry:
    """Entry `index` of lineage.json, or a `LineageDamagedError` naming what is wrong."""
    fields = {f.name: f for f in dataclasses.fields(Entry)}
    required = [name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if not isinstance(raw, dict):
        raise LineageDamagedError(f"{share.lineage}: entry {index} is a JSON "
                                  f"{type(raw).__name__}, expected an object; {fix}")
    missing = [name for name in required if name not in raw]
    if missing:
        raise LineageDamagedError(f"{share.lineage}: entry {index} ({raw.get('date', '?')}) "
                                  f"lacks {', '.join(missing)}; {fix}")
    try:
        entry = Entry(**{k: v for k, v in raw.items() if k in fields})
    except (TypeError, ValueError) as exc:
        raise LineageDamagedError(f"{share.lineage}: entry {index}: {exc}; {fix}") from exc
    return entry


def trained_dates(share: Share) -> set[dt.date]:
    """Dates on the active chain."""
    return Lineage.load(share).dates()


def commit(share: Share, entry: Entry, expected_parent: str | None,
           guard: Callable[[], None] | None = None,
           publish: Callable[[], None] | None = None) -> Lineage:
    """Make `entry` the new head if the head is still `expected_parent`.

    Runs under the lineage lock. `guard` runs inside the lock just before the write and
    may raise (a worker whose lease was lost raises `LeaseLostError`) to abort.
    `publish` then moves the checkpoint under its final name: doing it under the lock,
    after the compare-and-swap check, means a writer that lost the race never replaces
    the file the winner committed.

    Raises:
        HeadMovedError: someone else moved the head since the step started.
    """
    with file_lock(share.lineage_lock):
        lineage = Lineage.load(share)
        if lineage.head != expected_parent:
            raise HeadMovedError(
                f"head moved from {str(expected_parent)[:12]} to {str(lineage.head)[:12]} "
                f"while training {entry.date}; not committing (the lineage never forks)"
            )
        if guard is not None:
            guard()
        if publish is not None:
            if not share.lineage.is_file():
                # A chain's first commit writes the (empty) record before its checkpoint:
                # a kill between the two then leaves an uncommitted file, never
                # checkpoints without lineage, which `open_share` calls a lost record.
                lineage.save(share)
            publish()
        lineage.entries.append(entry)
        lineage.head = entry.sha256
        lineage.save(share)
        return lineage


def rewind(share: Share, to_day: dt.date | None) -> list[Entry]:
    """Move the head back to the checkpoint of `to_day` (None: before the first day).

    The entries after it stay in the file, marked superseded, so the old branch remains
    inspectable. Returns the superseded entries.
    """
    with file_lock(share.lineage_lock):
        lineage = Lineage.load(share)
        chain = lineage.chain()
        if to_day is None:
            keep: list[Entry] = []
        else:
            idx = next((i for i, e in enumerate(chain) if e.date == to_day), None)
            if idx is None:
                raise LineageError(f"no checkpoint for {to_day} on the active chain")
            keep = chain[: idx + 1]
        dropped = chain[len(keep):]
        for entry in dropped:
            entry.status = EntryStatus.SUPERSEDED
            _move_aside(share, entry)
        lineage.head = keep[-1].sha256 if keep else None
        lineage.save(share)
        return dropped


def _move_aside(share: Share, entry: Entry) -> None:
    """Give a superseded checkpoint its own name, so the replayed day can take the usual one."""
    old = share.root / entry.checkpoint
    new = old.with_name(f"{old.stem}.superseded-{entry.sha256[:12]}{old.suffix}")
    if old.is_file() and not new.exists():
        os.replace(old, new)
    if new.is_file():
        entry.checkpoint = str(new.relative_to(share.root))


def verify(share: Share) -> list[Entry]:
    """Check every link of the active chain; return it, or raise naming the first break."""
    lineage = Lineage.load(share)
    chain = lineage.chain()
    parent: str | None = None
    for entry in chain:
        where = f"lineage entry {entry.date}"
        if entry.parent_sha256 != parent:
            raise LineageError(f"{where}: parent {entry.parent_sha256} does not match {parent}")
        path = share.root / entry.checkpoint
        if not Path(path).is_file():
            raise LineageError(f"{where}: checkpoint {path} is missing")
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise LineageError(f"{where}: checkpoint {path} has sha256 {actual[:12]}..., "
                               f"expected {entry.sha256[:12]}...")
        parent = entry.sha256
    return chain
