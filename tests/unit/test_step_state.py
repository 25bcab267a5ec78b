"""The step's carried feature state on a share: lineage record, old chains, replay, damage."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from tests.shares import simulated_share
from trainer.backlog import replay, train_all
from trainer.features.carried import carried_features
from trainer.features.compute import FEATURE_COLUMNS
from trainer.features.state import boundary_days
from trainer.features.state_file import from_parquet
from trainer.features.store import features_for_day
from trainer.repair import fsck
from trainer.share.files import sha256_file
from trainer.share.lineage import Lineage, verify
from trainer.step import run_step

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(45)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Six days trained without interruption."""
    share = simulated_share(tmp_path_factory.mktemp("ref"), 6, customers=60, terminals=40)
    train_all(share)
    return share


def test_each_entry_records_the_sha256_of_the_state_it_wrote(reference):
    for entry in verify(reference):
        assert entry.feature_state_sha256 == sha256_file(reference.feature_state(entry.date))


def test_a_chain_without_states_keeps_working_and_rebuilds_once(tmp_path, reference, caplog):
    # GIVEN a chain of four days trained before the state existed: no sha, no files
    share = simulated_share(tmp_path, 6, customers=60, terminals=40)
    train_all(share, through=D[3])
    raw = json.loads(share.lineage.read_text())
    for entry in raw["entries"]:
        del entry["feature_state_sha256"]
    share.lineage.write_text(json.dumps(raw))
    for path in share.feature_state_dir.iterdir():
        path.unlink()
    # WHEN the next days are trained
    with caplog.at_level("WARNING"):
        run_step(share, D[4])
        run_step(share, D[5])
    # THEN the head's state was rebuilt once from the raw history, and the chain is the
    # uninterrupted one's
    rebuilt = [r for r in caplog.records if "rebuilding" in r.getMessage()]
    assert len(rebuilt) == 1 and "trained before it existed" in rebuilt[0].getMessage()
    assert [e.sha256 for e in verify(share)] == [e.sha256 for e in verify(reference)]
    # AND the state carried on from the rebuilt one holds the uninterrupted chain's sums (the
    # bytes may differ: entity order and the low words of the double-doubles)
    assert_same_state(share, reference, D[5])


def assert_same_state(share, reference, day):
    ours, theirs = (from_parquet(s.feature_state(day).read_bytes(), "state")
                    for s in (share, reference))
    for mine, other in ((ours.customers, theirs.customers), (ours.terminals, theirs.terminals)):
        a, b = np.argsort(mine.ids), np.argsort(other.ids)
        np.testing.assert_array_equal(mine.ids[a], other.ids[b])
        np.testing.assert_array_equal(mine.last_time[a], other.last_time[b])
        for n in mine.counts:
            np.testing.assert_array_equal(mine.counts[n][a], other.counts[n][b])
        for key, (hi, lo) in mine.floats.items():
            other_hi, other_lo = other.floats[key]
            np.testing.assert_allclose((hi + lo)[a], (other_hi + other_lo)[b], rtol=1e-13)
        for key, values in mine.ints.items():
            np.testing.assert_array_equal(values[a], other.ints[key][b])


def test_an_altered_state_is_rebuilt_not_trusted(tmp_path, reference, caplog):
    share = simulated_share(tmp_path, 6, customers=60, terminals=40)
    train_all(share, through=D[4])
    assert fsck(share).feature_state == "ok"
    share.feature_state(D[4]).write_bytes(b"PAR1 not a state")
    status = fsck(share).feature_state
    assert "2018-04-05.parquet has sha256" in status and "rebuilds" in status
    with caplog.at_level("WARNING"):
        run_step(share, D[5])
    assert any("sha256" in r.getMessage() for r in caplog.records)
    assert [e.sha256 for e in verify(share)] == [e.sha256 for e in verify(reference)]


def test_replay_restores_the_state_of_the_checkpoint_it_starts_from(tmp_path, reference):
    # GIVEN a trained chain; WHEN it is replayed from its third day
    share = simulated_share(tmp_path, 6, customers=60, terminals=40)
    train_all(share)
    before = {e.date: e.feature_state_sha256 for e in verify(share)}
    replay(share, D[2])
    # THEN the replay carried on from day 3's state: same checkpoints, same states
    after = verify(share)
    assert {e.date: e.feature_state_sha256 for e in after} == before
    assert [e.sha256 for e in after] == [e.sha256 for e in verify(reference)]
    superseded = [e for e in Lineage.load(share).entries if e.status == "superseded"]
    assert [e.date for e in superseded] == D[3:6]


def test_step_features_equal_the_raw_path_past_the_first_37_days(tmp_path):
    # GIVEN 42 simulated days with day 20 missing (a gap in the history)
    share = simulated_share(tmp_path, 42, customers=40, terminals=30)
    share.training_dataset(D[20]).unlink()
    manifest = json.loads(share.ingest_manifest.read_text())
    del manifest[D[20].isoformat()]
    share.ingest_manifest.write_text(json.dumps(manifest))
    head_day, head_sha = None, None
    for day in D[:42]:
        if day == D[20]:
            continue
        previous = head_day
        carried = carried_features(share, day, head_day, head_sha)
        share.feature_state_dir.mkdir(parents=True, exist_ok=True)
        share.feature_state(day).write_bytes(carried.state_bytes)
        head_day, head_sha = day, carried.state_sha256
        if day in (D[0], D[19], D[21], D[38], D[41]):
            raw = features_for_day(share, day, use_cache=False)
            got = carried.features
            assert (got["TRANSACTION_ID"].to_numpy() == raw["TRANSACTION_ID"].to_numpy()).all()
            for name in FEATURE_COLUMNS:
                exact = "_NB_TX_" in name or name.startswith("TX_DURING")
                np.testing.assert_allclose(got[name], raw[name], rtol=0 if exact else 1e-12,
                                           atol=0, err_msg=f"{day} {name}")
            pd.testing.assert_frame_equal(got.drop(columns=FEATURE_COLUMNS[1:]),
                                          raw.drop(columns=FEATURE_COLUMNS[1:]))
        if previous == day - dt.timedelta(days=1):
            # AND a step after its previous day reads only its boundary days, however long
            # the windows are (after the gap it reads the days the gap moved too)
            assert carried.rebuilt is None
            present = {d.isoformat() for d in boundary_days(day)
                       if share.training_dataset(d).is_file()}
            assert set(carried.days_read) == present


def test_a_late_day_ingested_without_replay_rebuilds_with_it(tmp_path):
    # GIVEN a chain trained through day 9 while day 5 was missing
    share = simulated_share(tmp_path, 10, customers=40, terminals=30)
    landing = tmp_path / "late.parquet"
    share.training_dataset(D[5]).rename(landing)
    manifest = json.loads(share.ingest_manifest.read_text())
    entry = manifest.pop(D[5].isoformat())
    share.ingest_manifest.write_text(json.dumps(manifest))
    head_day, head_sha = None, None
    for day in D[:9]:
        if day != D[5]:
            carried = carried_features(share, day, head_day, head_sha)
            share.feature_state_dir.mkdir(parents=True, exist_ok=True)
            share.feature_state(day).write_bytes(carried.state_bytes)
            head_day, head_sha = day, carried.state_sha256
    # WHEN day 5 arrives late and day 9 is computed from day 8's state
    landing.rename(share.training_dataset(D[5]))
    manifest[D[5].isoformat()] = entry
    share.ingest_manifest.write_text(json.dumps(manifest))
    carried = carried_features(share, D[9], head_day, head_sha)
    # THEN the stale state is rebuilt and the features include the late day, as the raw path
    assert carried.rebuilt is not None and "2018-04-06" in carried.rebuilt
    raw = features_for_day(share, D[9], use_cache=False)
    np.testing.assert_array_equal(carried.features["CUSTOMER_ID_NB_TX_7DAY_WINDOW"],
                                  raw["CUSTOMER_ID_NB_TX_7DAY_WINDOW"])
