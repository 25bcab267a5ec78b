"""The same transactions and labels, fed in any order and cut, give the clean feed's datasets.

One simulated range crossing the DST change (2018-03-25) and a month end, in a bank's
export form (text ids, UTC times). The clean feed ingests all rows as one file, then all
chargebacks. A random feed cuts the rows by UTC month, ISO week or UTC day (and resends
a piece of one file), shuffles the files with the chargeback files (some early, before
their transactions; some late, after the N-day rule completed their day; one duplicated
under another name; a correction that flips a fraud, re-delivered agreeing or left
unresolved) and, between deliveries, runs the N-day rule and trains the chain at random
points (so rows and labels also come late for trained days). At the end every day is
closed, the rule runs once more, the late labels and late rows are applied (rewind and
replay, as `fraudpipe relabel`), days that arrived after later ones were trained are
replayed, and the chain is trained: every day's training dataset, and the dataset each
day of the trained chain was trained on, must equal the clean feed's, except days named
by an unresolved label conflict (and the days after the first of them that holds the
chain back).
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pandas as pd
import pytest

from trainer.backlog import train_all
from trainer.data.bank_export import MAPPING, transactions, tx_id
from trainer.data.ingest import ingest_path
from trainer.data.mapping import ColumnMapping
from trainer.data.simulator import simulate
from trainer.label_files import store_labels
from trainer.labels import arrived_dates, complete_days, label_problems
from trainer.relabel import apply_late_labels
from trainer.replay import late_days, replay_point, rewind_for_replay
from trainer.share.files import sha256_file
from trainer.share.layout import Share
from trainer.share.lineage import Lineage, verify

START, DAYS = "2018-03-22", 8
FAR = dt.date(2018, 6, 1)


@pytest.fixture(scope="module")
def export() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transaction rows in the export's form, chargebacks: tx_id, is_fraud, day)."""
    days = list(simulate(START, DAYS, customers=60, terminals=120, seed=3))
    rows = pd.concat([transactions(frame) for _, frame in days], ignore_index=True)
    frauds = pd.concat([pd.DataFrame({"tx_id": tx_id(f.loc[f["TX_FRAUD"] == 1,
                                                           "TRANSACTION_ID"]),
                                      "is_fraud": 1, "day": day.isoformat()})
                        for day, f in days], ignore_index=True)
    assert len(frauds) > 3
    return rows, frauds


def _mapping(zone: str) -> ColumnMapping:
    return ColumnMapping(columns=MAPPING["columns"], timezone=zone)


def _train(share: Share) -> None:
    train_all(share, learner="sgd")


def _finish(share: Share) -> tuple[dict[dt.date, str], dict[dt.date, str]]:
    """Close every day, apply the rule, the late data and late days, train the chain.

    Returns:
        Each day's training dataset sha256, and the dataset sha256 each day of the
        verified chain was trained on.
    """
    from trainer.data.day_parts import close_days

    close_days(share, arrived_dates(share))
    complete_days(share, FAR, 2)
    apply_late_labels(share)
    late = late_days(share)
    if late:  # days that came after later days were trained: the replay the warning names
        rewind_for_replay(share, replay_point(Lineage.load(share), late[0]))
    _train(share)
    return ({d: sha256_file(share.training_dataset(d)) for d in share.training_dates()},
            {e.date: e.dataset_sha256 for e in verify(share)})


def _clean(root: Path, zone: str, export) -> tuple[dict[dt.date, str], dict[dt.date, str]]:
    rows, frauds = export
    share = Share.at(root / "clean")
    (root / "clean-in").mkdir(parents=True)
    rows.to_csv(root / "clean-in" / "all.csv", index=False)
    frauds[["tx_id", "is_fraud"]].to_csv(root / "clean-in" / "frauds.csv", index=False)
    ingest_path(root / "clean-in" / "all.csv", share, mapping=_mapping(zone))
    store_labels(share, root / "clean-in" / "frauds.csv")
    return _finish(share)


def _cut(rows: pd.DataFrame, how: str) -> list[pd.DataFrame]:
    when = pd.to_datetime(rows["timestamp"], utc=True)
    key = {"month": when.dt.strftime("%Y-%m"), "day": when.dt.strftime("%Y-%m-%d"),
           "week": when.dt.strftime("%G-W%V")}[how]
    return [part for _, part in rows.groupby(key, sort=True)]


def _random_feed(root: Path, zone: str, export, rng: random.Random
                 ) -> tuple[tuple[dict[dt.date, str], dict[dt.date, str]], list[str], str]:
    rows, frauds = export
    share = Share.at(root / "feed")
    landing = root / "feed-in"
    landing.mkdir(parents=True)
    how = rng.choice(["month", "week", "day"])
    events: list[tuple[str, Path]] = []

    def deliver(kind: str, name: str, frame: pd.DataFrame) -> Path:
        path = landing / name
        frame.to_csv(path, index=False)
        return path

    pieces = _cut(rows, how)
    files = [("tx", f"export-{n:03d}.csv", piece) for n, piece in enumerate(pieces)]
    some = rng.choice(pieces)
    files.append(("tx", "resent.csv", some.sample(frac=0.5, random_state=rng.randrange(99))))
    for day, chargebacks in frauds.groupby("day"):
        files.append(("labels", f"cb-{day}.csv", chargebacks[["tx_id", "is_fraud"]]))
    files.append(("labels", "cb-copy.csv", frauds[["tx_id", "is_fraud"]].head(2)))
    flipped = frauds.sample(1, random_state=rng.randrange(99))
    files.append(("labels", "correction.csv", flipped.assign(is_fraud=0)[["tx_id", "is_fraud"]]))
    rng.shuffle(files)
    unresolved = rng.random() < 0.25
    if not unresolved:  # the correction is delivered again, agreeing, some time after
        at = next(i for i, f in enumerate(files) if f[1] == "correction.csv")
        files.insert(rng.randint(at + 1, len(files)),
                     ("fix", "correction.csv", flipped[["tx_id", "is_fraud"]]))
    for kind, name, frame in files:
        path = deliver(kind, name, frame)
        events.append((kind, path))
        if kind == "tx":  # no row of the feed conflicts: nothing may be refused
            refused = ingest_path(path, share, mapping=_mapping(zone)).refused
            assert not refused, (name, refused)
        else:
            store_labels(share, path)
        if rng.random() < 0.5:
            complete_days(share, None, 2)  # the daily N-day rule, N = 2: late labels happen
        if rng.random() < 0.3:
            _train(share)  # later rows and labels of these days are late for a trained day
    plan = f"{how} cut, {zone}, {'unresolved' if unresolved else 'corrected'}: " + ", ".join(
        p.name for _, p in events)
    return _finish(share), label_problems(share), plan


def _check(tmp_path: Path, zone: str, seed: int, export, clean: tuple) -> None:
    (datasets, chain), problems, plan = _random_feed(
        tmp_path / f"{zone}-{seed}".replace("/", "-"), zone, export, random.Random(seed))
    clean_datasets, clean_chain = clean
    assert clean_chain == clean_datasets  # the clean feed trains every day, as ingested
    differing = {d for d in set(clean_datasets) | set(datasets)
                 if clean_datasets.get(d) != datasets.get(d)}
    named = {d for d in set(clean_datasets) | set(datasets)
             if any(f"label conflict on {d}" in p for p in problems)}
    assert differing <= named, (plan, sorted(differing), problems)
    # The chain holds every day up to the first one a conflict keeps from training, each
    # trained on the clean feed's dataset (or one a conflict names)
    blocked = min((d for d in named if d not in chain), default=None)
    expected = [d for d in sorted(clean_datasets) if blocked is None or d < blocked]
    assert sorted(chain) == expected, (plan, sorted(chain), problems)
    wrong = {d for d, sha in chain.items() if sha != clean_datasets[d]}
    assert wrong <= named, (plan, sorted(wrong), problems)


@pytest.fixture(scope="module")
def cleans(tmp_path_factory, export) -> dict[str, dict]:
    return {zone: _clean(tmp_path_factory.mktemp(zone.replace("/", "-")), zone, export)
            for zone in ("UTC", "Europe/Paris")}


@pytest.mark.parametrize(("zone", "seed"), [("UTC", 1), ("Europe/Paris", 2)])
def test_any_order_and_cut_gives_the_clean_datasets_or_names_the_conflict(
        tmp_path, export, cleans, zone, seed):
    _check(tmp_path, zone, seed, export, cleans[zone])


@pytest.mark.slow
@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
@pytest.mark.parametrize("seed", range(100, 130))
def test_many_orders_and_cuts_give_the_clean_datasets_or_name_the_conflict(
        tmp_path, export, cleans, zone, seed):
    _check(tmp_path, zone, seed, export, cleans[zone])
