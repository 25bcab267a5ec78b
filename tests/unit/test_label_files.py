"""Label files are data: each stored or quarantined on its own, conflicts kept and blocking.

A week and more of chargebacks lands in one directory beside a "correction" file that
flips one label, and a file with a bad value. The good files are stored; the conflict
keeps both versions and blocks only its day; the bad file is quarantined with its reason
and blocks the days it names; no day completes by the N-day rule without its frauds.
"""

import datetime as dt
import json

import pandas as pd
import pytest

from tests.arrivals import arrive, write_labels
from trainer.cli import main
from trainer.data.simulator import simulate
from trainer.share.layout import create_share

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(12)]


@pytest.fixture(scope="module")
def frames():
    """Twelve small simulated days, labelled (the truth the chargebacks come from)."""
    return dict(simulate("2018-04-01", 12, customers=200, terminals=400, seed=1))


@pytest.fixture
def landing(tmp_path, frames):
    """A share with the 12 days arrived unlabelled; a landing area of their chargebacks,
    one file per day (frauds only), plus correction.csv flipping one fraud of D[2]."""
    share, _ = create_share(tmp_path / "share", "test")
    for day in D:
        arrive(share, day, frames[day])
    chargebacks = tmp_path / "chargebacks"
    chargebacks.mkdir()
    for day in D:
        write_labels(chargebacks / f"{day}.csv", frames[day], frauds_only=True,
                     names=("tx_id", "is_fraud"))
    fraud = frames[D[2]][frames[D[2]]["TX_FRAUD"] == 1].head(1)
    write_labels(chargebacks / "correction.csv", fraud.assign(TX_FRAUD=0))
    return share, chargebacks, int(fraud["TRANSACTION_ID"].iloc[0])


def _frauds_in(share, day) -> int:
    return int(pd.read_parquet(share.training_dataset(day))["TX_FRAUD"].sum())


def test_a_conflicting_file_keeps_the_good_labels_and_blocks_only_its_day(landing, frames,
                                                                          capsys):
    share, chargebacks, tx = landing
    # WHEN the directory is filed (conflict: exit 3, but every other label is stored)
    assert main(["labels", "--source", str(chargebacks), "--storage", str(share.root),
                 "--today", D[11].isoformat()]) == 3
    captured = capsys.readouterr()
    assert f"transaction {tx}" in captured.out + captured.err
    assert "correction.csv" in captured.out + captured.err
    # THEN every day past N completed with all its frauds, except the conflicting D[2]
    for day in D[:5]:
        if day == D[2]:
            assert not share.training_dataset(day).exists()
        else:
            assert _frauds_in(share, day) == int(frames[day]["TX_FRAUD"].sum()), day
    # AND the N-day rule alone (as the daily flow runs it) still does not complete D[2]
    assert main(["labels", "--storage", str(share.root), "--today", "2018-04-30"]) == 3
    assert not share.training_dataset(D[2]).exists()
    capsys.readouterr()
    assert main(["days", "--storage", str(share.root), "--json"]) == 0
    states = {d["date"]: d for d in json.loads(capsys.readouterr().out)}
    assert states[D[2].isoformat()]["state"] == "label conflict"
    assert states[D[2].isoformat()]["conflicts"] == [tx]
    # WHEN the correction is withdrawn, D[2] completes with its frauds (not "late")
    assert main(["labels", "--withdraw", "correction.csv", "--storage", str(share.root),
                 "--today", "2018-04-30"]) == 0
    assert _frauds_in(share, D[2]) == int(frames[D[2]]["TX_FRAUD"].sum())


def test_a_bad_label_file_is_quarantined_alone_and_holds_back_the_days_it_names(
        landing, frames, tmp_path, capsys):
    share, chargebacks, _ = landing
    (chargebacks / "correction.csv").unlink()
    ids = frames[D[3]]["TRANSACTION_ID"]
    fraud = ids[frames[D[3]]["TX_FRAUD"] == 1].iloc[0]
    other = ids[ids != fraud].iloc[0]  # another transaction of D[3]
    (chargebacks / "bad.csv").write_text(f"tx_id,is_fraud\n{fraud},1\n{other},maybe\n")
    # WHEN the directory is filed: the bad file is quarantined, the others stored
    assert main(["labels", "--source", str(chargebacks), "--storage", str(share.root),
                 "--today", D[11].isoformat()]) == 3
    captured = capsys.readouterr()
    assert "bad.csv: row 1" in captured.out + captured.err
    reasons = list(share.quarantine_dir.glob("*bad.csv.reason.txt"))
    assert len(reasons) == 1 and "'maybe'" in reasons[0].read_text()
    # THEN every day past N but D[3] is complete with its frauds; D[3] waits for the file
    for day in D[:5]:
        if day == D[3]:
            assert not share.training_dataset(day).exists()
        else:
            assert _frauds_in(share, day) == int(frames[day]["TX_FRAUD"].sum()), day
    # WHEN the corrected file of that name comes, D[3] completes
    (chargebacks / "bad.csv").write_text(f"tx_id,is_fraud\n{fraud},1\n")
    assert main(["labels", "--source", str(chargebacks / "bad.csv"), "--storage",
                 str(share.root), "--today", D[11].isoformat()]) == 0
    assert _frauds_in(share, D[3]) == int(frames[D[3]]["TX_FRAUD"].sum())
