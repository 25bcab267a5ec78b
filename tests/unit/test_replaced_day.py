"""A replaced arrived day is scored again, with every later arrived day whose features read it,
and the labels stored for its vanished transactions are reported, not dropped."""

import datetime as dt
import json

import pandas as pd
import pytest

from tests.arrivals import LABEL_COLUMNS, write_labels
from trainer.arrival import scored_by
from trainer.cli import main
from trainer.data.simulator import simulate, write_day
from trainer.share.layout import Share
from trainer.share.manifest import manifest_key, read_manifest

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(6)]


@pytest.fixture(scope="module")
def frames():
    return dict(simulate("2018-04-01", 6, customers=200, terminals=400, seed=1))


@pytest.fixture
def scored(tmp_path, frames, capsys):
    """D[0..2] labelled and trained; D[3], D[4] arrived unlabelled and scored by the head."""
    share = Share.at(tmp_path / "share")
    landing = tmp_path / "landing"
    for day in D[:3]:
        write_day(frames[day], landing, day)
    for day in D[3:5]:
        frames[day].drop(columns=LABEL_COLUMNS).to_parquet(landing / f"{day}.parquet",
                                                           index=False)
    assert main(["ingest", "--source", str(landing), "--storage", str(share.root)]) == 0
    assert main(["train", "--storage", str(share.root), "--learner", "sgd"]) == 0
    assert main(["score", "--storage", str(share.root)]) == 0
    assert scored_by(share, D[3]) and scored_by(share, D[4])
    capsys.readouterr()
    return share, landing


def test_a_replaced_scored_day_and_the_days_reading_it_are_scored_again(scored, frames,
                                                                        tmp_path, capsys):
    share, landing = scored
    # GIVEN labels for D[3], some of them for transactions the correction removes
    removed = frames[D[3]].head(4)
    write_labels(tmp_path / "early.csv", removed)
    assert main(["labels", "--source", str(tmp_path / "early.csv"), "--storage",
                 str(share.root)]) == 0
    # WHEN D[3] is ingested again with corrected rows (4 removed, amounts changed)
    corrected = frames[D[3]].iloc[4:].drop(columns=LABEL_COLUMNS)
    corrected = corrected.assign(TX_AMOUNT=corrected["TX_AMOUNT"] + 1.0)
    corrected.to_parquet(landing / f"{D[3]}.parquet", index=False)
    capsys.readouterr()
    assert main(["ingest", "--source", str(landing / f"{D[3]}.parquet"), "--storage",
                 str(share.root)]) == 0
    out = capsys.readouterr().out
    assert "[replaced]" in out
    # THEN the labels of the removed transactions are reported, not silently dropped
    assert "4 label(s) name transaction(s) no longer in 2018-04-04" in out
    # AND `days` no longer calls the old scores current
    assert main(["days", "--storage", str(share.root), "--json"]) == 0
    states = {d["date"]: d for d in json.loads(capsys.readouterr().out)}
    assert states[D[3].isoformat()]["scores_stale"] is True
    assert states[D[4].isoformat()]["scores_stale"] is True  # its features read D[3]
    assert states[D[3].isoformat()]["labels_for_missing_ids"] == 4
    # WHEN scoring runs, both days are scored again from their current rows
    assert main(["score", "--storage", str(share.root)]) == 0
    assert "2018-04-04, 2018-04-05" in capsys.readouterr().out
    scores = pd.read_parquet(share.scores(D[3]))
    assert sorted(scores["TRANSACTION_ID"]) == sorted(corrected["TRANSACTION_ID"])
    # AND completing the day records the labels it could not apply
    main(["labels", "--storage", str(share.root), "--today", "2018-04-30"])
    entry = read_manifest(share)[manifest_key("training", D[3])]
    assert sorted(entry["labels_for_missing_ids"]) == sorted(
        str(t) for t in removed["TRANSACTION_ID"])
