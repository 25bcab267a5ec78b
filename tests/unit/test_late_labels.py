"""A chargeback for a day already trained is stored, shown, and applied by relabel + replay."""

import datetime as dt
import json

import pandas as pd
import pytest

from tests.arrivals import arrive, write_labels
from trainer.cli import main
from trainer.data.simulator import simulate
from trainer.labels import read_stored_labels
from trainer.share.files import sha256_file
from trainer.share.layout import create_share
from trainer.share.lineage import Lineage, verify

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(6)]


@pytest.fixture(scope="module")
def frames():
    return dict(simulate("2018-04-01", 6, customers=200, terminals=400, seed=1))


@pytest.fixture
def trained(tmp_path, frames):
    """D[0..5] arrived unlabelled; D[0..3] completed with no label (all genuine), trained."""
    share, _ = create_share(tmp_path / "share", "test")
    for day in D:
        arrive(share, day, frames[day])
    assert main(["labels", "--storage", str(share.root), "--today", "2018-04-11"]) == 0
    assert main(["train", "--storage", str(share.root), "--learner", "sgd"]) == 0
    assert [e.date for e in verify(share)] == D[:4]
    return share


def test_a_late_chargeback_is_stored_shown_and_applied_by_relabel(trained, frames, tmp_path,
                                                                 capsys):
    share = trained
    frauds = [frames[d][frames[d]["TX_FRAUD"] == 1].head(2 if d == D[0] else 1)
              for d in (D[0], D[2])]
    write_labels(tmp_path / "late.csv", pd.concat(frauds))
    ids = [str(t) for f in frauds for t in f["TRANSACTION_ID"]]
    capsys.readouterr()
    # WHEN chargebacks for two trained days arrive
    assert main(["labels", "--source", str(tmp_path / "late.csv"), "--storage",
                 str(share.root)]) == 0
    out = capsys.readouterr().out
    # THEN they are stored with their arrival time and shown
    assert "3 late label(s) on 2 trained day(s)" in out
    stored = read_stored_labels(share, D[0])
    assert sorted(stored["TRANSACTION_ID"].astype(str)) == sorted(ids[:2])
    assert stored["ARRIVED_AT"].notna().all()
    assert main(["days", "--storage", str(share.root), "--json"]) == 0
    states = {d["date"]: d for d in json.loads(capsys.readouterr().out)}
    assert [states[d.isoformat()]["late_labels"] for d in D[:4]] == [2, 0, 1, 0]
    # WHEN relabel runs
    head_before = Lineage.load(share).head
    assert main(["relabel", "--storage", str(share.root), "--learner", "sgd"]) == 0
    # THEN the training datasets hold the frauds and the chain was replayed from D[0]
    for day, f in zip((D[0], D[2]), frauds, strict=True):
        data = pd.read_parquet(share.training_dataset(day)).set_index("TRANSACTION_ID")
        assert (data.loc[f["TRANSACTION_ID"], "TX_FRAUD"] == 1).all()
    chain = verify(share)
    assert [e.date for e in chain] == D[:4] and Lineage.load(share).head != head_before
    assert chain[0].dataset_sha256 == sha256_file(share.training_dataset(D[0]))
    capsys.readouterr()
    assert main(["days", "--storage", str(share.root), "--json"]) == 0
    assert all(d["late_labels"] == 0 for d in json.loads(capsys.readouterr().out))
