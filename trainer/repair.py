"""Ways back from damage, without Prefect or Redis: `fsck` of the share, lineage repair.

`fsck` lists what crashes leave behind (`.tmp-*` files of killed writers, checkpoints no
lineage entry names) and the quarantine, and with `clean=True` removes the first two.
`repair_lineage` rebuilds a lost or damaged `output/lineage.json` from what the share can
prove (the chain order recorded in `output/report.json`, each checkpoint's sha256), or
moves the head of an intact lineage back before its first broken link; it says what it
could not prove and never deletes a checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from trainer.errors import LineageError
from trainer.share.files import sha256_file
from trainer.share.layout import Share
from trainer.share.lineage import Entry, Lineage, rewind
from trainer.share.locks import file_lock
from trainer.share.manifest import manifest_key, read_manifest

#: `.tmp-*` files younger than this may belong to a writer still running: kept by --clean.
TEMP_MIN_AGE_SECONDS = 3600.0


@dataclass
class FsckReport:
    """What `fsck` found (and removed)."""

    temp_files: list[str] = field(default_factory=list)
    recent_temp_files: list[str] = field(default_factory=list)
    orphan_checkpoints: list[str] = field(default_factory=list)
    superseded_checkpoints: list[str] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    feature_state: str = ""
    """The head's feature state: "ok", or why the next step will rebuild it."""

    def to_json(self) -> dict:
        """The report as JSON."""
        return dict(self.__dict__)


def fsck(share: Share, *, clean: bool = False,
         temp_min_age_seconds: float = TEMP_MIN_AGE_SECONDS) -> FsckReport:
    """List (and with `clean`, remove) temp files and orphan checkpoints; list quarantine.

    Runs under the lineage lock: a step publishes its checkpoint only under it, so a
    checkpoint no entry names is not one being committed right now.
    """
    report = FsckReport()
    now = time.time()
    with file_lock(share.lineage_lock):
        for path in sorted(share.root.rglob(".tmp-*")):
            relative = str(path.relative_to(share.root))
            if now - path.stat().st_mtime < temp_min_age_seconds:
                report.recent_temp_files.append(relative)
                continue
            report.temp_files.append(relative)
            if clean:
                path.unlink(missing_ok=True)
                report.removed.append(relative)
        lineage = Lineage.load(share)
        report.feature_state = _head_state_status(share, lineage)
        named = {e.checkpoint for e in lineage.entries}
        superseded = {e.checkpoint for e in lineage.entries if e.status == "superseded"}
        if share.output_dir.is_dir():
            for path in sorted(share.output_dir.glob("model_cpt_*.skops")):
                relative = str(path.relative_to(share.root))
                if relative in superseded:
                    report.superseded_checkpoints.append(relative)
                elif relative not in named:
                    report.orphan_checkpoints.append(relative)
                    if clean:
                        path.unlink()
                        report.removed.append(relative)
    if share.quarantine_dir.is_dir():
        for reason in sorted(share.quarantine_dir.glob("*.reason.txt")):
            copy = reason.with_name(reason.name.removesuffix(".reason.txt"))
            first = reason.read_text(errors="replace").splitlines()[:1]
            report.quarantine.append({"file": str(copy.relative_to(share.root)),
                                      "present": copy.is_file(),
                                      "reason": first[0] if first else ""})
    return report


def _head_state_status(share: Share, lineage: Lineage) -> str:
    """Whether the head's feature state file is the one its entry records."""
    head = lineage.head_entry
    if head is None:
        return "ok (no head yet)"
    path = share.feature_state(head.date)
    rebuild = "the next step rebuilds it from the raw history"
    if head.feature_state_sha256 is None:
        return f"not recorded for the head {head.date}: {rebuild}"
    if not path.is_file():
        return f"{path.relative_to(share.root)} is missing: {rebuild}"
    found = sha256_file(path)
    if found != head.feature_state_sha256:
        return (f"{path.relative_to(share.root)} has sha256 {found[:12]}..., the lineage "
                f"records {head.feature_state_sha256[:12]}...: {rebuild}")
    return "ok"


@dataclass
class RepairReport:
    """What `repair_lineage` did and what it could not prove."""

    actions: list[str] = field(default_factory=list)
    unproven: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The report as JSON."""
        return dict(self.__dict__)


def repair_lineage(share: Share) -> RepairReport:
    """Repair `output/lineage.json`: rebuild it when lost or damaged, else cut a broken chain.

    Raises:
        LineageError: nothing could be proven (no usable `output/report.json`); nothing
            was changed.
    """
    try:
        lineage = Lineage.load(share)
        damaged = None
    except LineageError as exc:
        lineage, damaged = None, exc
    if lineage is not None and share.lineage.is_file():
        return _cut_at_first_break(share, lineage)
    return _rebuild(share, damaged)


def _cut_at_first_break(share: Share, lineage: Lineage) -> RepairReport:
    report = RepairReport()
    chain = lineage.chain()
    good: Entry | None = None
    for entry in chain:
        path = share.root / entry.checkpoint
        found = sha256_file(path) if path.is_file() else None
        if found != entry.sha256:
            what = "missing" if found is None else f"sha256 {found[:12]}..., recorded " \
                                                   f"{entry.sha256[:12]}..."
            report.unproven.append(f"{entry.date}: checkpoint {entry.checkpoint} {what}")
            break
        good = entry
    if not report.unproven:
        report.actions.append("the lineage verifies; nothing to repair")
    else:
        dropped = rewind(share, good.date if good else None)
        report.actions.append(
            f"head moved back to {good.date if good else 'before the first day'}; "
            f"superseded (kept in the lineage): {', '.join(e.date.isoformat() for e in dropped)}. "
            f"Retrain them with: fraudpipe train --storage {share.root}")
    report.chain = [e.date.isoformat() for e in Lineage.load(share).chain()]
    return report


def _rebuild(share: Share, damaged: LineageError | None) -> RepairReport:
    report = RepairReport()
    steps = _report_steps(share)
    checkpoints = sorted(str(p.relative_to(share.root))
                         for p in share.output_dir.glob("model_cpt_*.skops")) \
        if share.output_dir.is_dir() else []
    if not steps:
        raise LineageError(
            f"cannot rebuild {share.lineage}: {share.report_json} is missing or unreadable, "
            f"so the order of the {len(checkpoints)} checkpoint(s) cannot be proven; nothing "
            "changed. Restore lineage.json from a backup or snapshot of the share")
    manifest = read_manifest(share)
    entries: list[Entry] = []
    parent: str | None = None
    for step in steps:
        path = share.root / step["checkpoint"]
        found = sha256_file(path) if path.is_file() else None
        if found != step["sha256"]:
            report.unproven.append(
                f"{step['date']}: checkpoint {step['checkpoint']} "
                + ("is missing" if found is None else "does not match report.json")
                + "; it and the later days are left out (retrain them)")
            break
        day = dt.date.fromisoformat(step["date"])
        dataset_sha = manifest.get(manifest_key("training", day), {}).get("dataset_sha256", "")
        entries.append(Entry(
            date=step["date"], checkpoint=step["checkpoint"], sha256=step["sha256"],
            parent_sha256=parent, dataset_sha256=dataset_sha, learner=step["learner"],
            metrics=step.get("metrics", {}), gap_days=step.get("gap_days", 0),
            committed_at=step.get("committed_at", "")))
        parent = step["sha256"]
    on_chain = {e.checkpoint for e in entries}
    report.unproven += [f"{c}: not on the rebuilt chain (its parent is not recorded); "
                        f"kept, `fraudpipe fsck --clean` removes it" for c in checkpoints
                        if c not in on_chain]
    with file_lock(share.lineage_lock):
        if share.lineage.is_file():
            aside = share.lineage.with_name(
                f"lineage.json.damaged-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")
            os.replace(share.lineage, aside)
            report.actions.append(f"damaged lineage kept as {aside.name} ({damaged})")
        Lineage(head=parent, entries=entries).save(share)
    report.actions.append(
        f"rebuilt {share.lineage} from {share.report_json.name} and the checkpoints' "
        f"sha256: {len(entries)} entr(ies); dataset hashes taken from the ingest manifest")
    report.chain = [e.date.isoformat() for e in entries]
    return report


def _report_steps(share: Share) -> list[dict]:
    """The chain recorded in `output/report.json` (rewritten after every commit)."""
    try:
        steps = json.loads(Path(share.report_json).read_text())["steps"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    needed = {"date", "checkpoint", "sha256", "learner"}
    if not isinstance(steps, list) or not all(isinstance(s, dict) and needed <= set(s)
                                              for s in steps):
        return []
    return steps
