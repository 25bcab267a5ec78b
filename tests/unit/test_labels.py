"""Labels that arrive later: filing them, conflicts, the N-day rule and strict date order."""

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.arrivals import arrive, write_labels
from tests.shares import simulated_share
from trainer.backlog import trainable_days
from trainer.cli import main
from trainer.data.simulator import simulate
from trainer.errors import DatasetValidationError
from trainer.label_files import store_labels
from trainer.labels import complete_days, default_today, read_stored_labels
from trainer.relabel import late_labels
from trainer.share.layout import create_share
from trainer.share.manifest import manifest_key, read_manifest

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(12)]


@pytest.fixture(scope="module")
def frames():
    """Twelve small simulated days, labelled (the truth the labels files come from)."""
    return dict(simulate("2018-04-01", 12, customers=200, terminals=400, seed=1))


@pytest.fixture
def share(tmp_path, frames):
    """A share on which D[0] .. D[3] arrived without labels."""
    share, _ = create_share(tmp_path / "share", "test")
    for day in D[:4]:
        arrive(share, day, frames[day])
    return share


def test_partial_labels_wait_for_the_n_day_rule_then_missing_means_genuine(share, frames,
                                                                          tmp_path):
    # GIVEN only the confirmed frauds of D[0], in the bank export's column names
    write_labels(tmp_path / "frauds.csv", frames[D[0]], frauds_only=True,
                 names=("tx_id", "is_fraud"))
    result = store_labels(share, tmp_path / "frauds.csv")
    frauds = int(frames[D[0]]["TX_FRAUD"].sum())
    assert frauds > 0 and result.stored == [{"date": "2018-04-01", "new": frauds, "known": 0,
                                             "frauds": frauds,
                                             "path": str(share.labels(D[0]))}]
    # WHEN today is D[3] (the latest day on the share): 3 days after D[0], N = 7
    assert default_today(share) == D[3]
    assert complete_days(share) == []
    assert trainable_days(share) == []
    # THEN at today = D[0] + 7 the day is complete, the rest genuine: the simulator's labels
    done = complete_days(share, today=D[7])
    assert [(d["date"], d["how"], d["labels"]) for d in done] == [("2018-04-01", "7-day rule",
                                                                   frauds)]
    trained_on = pd.read_parquet(share.training_dataset(D[0]))
    truth = frames[D[0]].sort_values("TRANSACTION_ID", ignore_index=True)
    got = trained_on.sort_values("TRANSACTION_ID", ignore_index=True)
    assert got["TX_FRAUD"].tolist() == truth["TX_FRAUD"].tolist()
    assert got.columns.tolist() == [c for c in truth.columns if c != "TX_FRAUD_SCENARIO"]
    entry = read_manifest(share)[manifest_key("training", D[0])]
    assert (entry["completed_by"], entry["genuine_after_days"]) == ("7-day rule", 7)
    assert share.arrived_dataset(D[0]).is_file()  # the arrived file is kept
    assert trainable_days(share) == [D[0]]


def test_a_full_labels_file_completes_its_day_at_once(share, frames, tmp_path):
    write_labels(tmp_path / "all.csv", frames[D[1]])
    store_labels(share, tmp_path / "all.csv")
    done = complete_days(share, genuine_after_days=7)
    assert [(d["date"], d["how"]) for d in done] == [("2018-04-02", "all labelled")]
    # strict date order: D[1] is ready, but D[0] still waits for its labels
    assert trainable_days(share) == []


def test_n_is_configurable(share):
    done = complete_days(share, genuine_after_days=2)
    assert [d["date"] for d in done] == ["2018-04-01", "2018-04-02"]  # today D[3] >= day + 2


def test_conflicting_labels_are_both_kept_named_and_only_their_day_is_held(share, frames,
                                                                          tmp_path):
    first = frames[D[2]].head(5)
    write_labels(tmp_path / "a.csv", first)
    store_labels(share, tmp_path / "a.csv")
    flipped = first.assign(TX_FRAUD=1 - first["TX_FRAUD"]).iloc[[3]]
    write_labels(tmp_path / "b.csv", pd.concat([frames[D[3]].head(2), flipped]))
    tx = int(flipped["TRANSACTION_ID"].iloc[0])
    result = store_labels(share, tmp_path / "b.csv")
    [conflict] = result.conflicts
    assert conflict["transaction_id"] == tx and conflict["date"] == "2018-04-03"
    assert "a.csv row 3" in conflict["detail"] and "b.csv row 2" in conflict["detail"]
    assert sorted(read_stored_labels(share, D[2])["SOURCE"]) == ["a.csv"] * 5 + ["b.csv"]
    assert len(read_stored_labels(share, D[3])) == 2  # the good rows of b.csv are stored
    done = complete_days(share, today=D[11])
    assert "2018-04-03" not in [d["date"] for d in done]
    assert "2018-04-04" in [d["date"] for d in done]

def test_one_file_labelling_a_transaction_twice_is_quarantined(share, frames, tmp_path):
    row = frames[D[0]].head(1)
    write_labels(tmp_path / "twice.csv", pd.concat([row, row.assign(TX_FRAUD=1 - row.TX_FRAUD)]))
    [bad] = store_labels(share, tmp_path / "twice.csv").quarantined
    assert re.search(r"twice.csv row 0: .*twice.csv row 1", bad["reason"])
    assert bad["days"] == ["2018-04-01"] and not share.labels(D[0]).exists()

def test_unknown_ids_are_kept_and_an_identical_file_again_is_unchanged(share, frames,
                                                                        tmp_path):
    rows = frames[D[0]].head(3)
    stranger = pd.DataFrame({"TRANSACTION_ID": [10**9], "TX_FRAUD": [1]})
    write_labels(tmp_path / "x.csv", pd.concat([rows, stranger]))
    result = store_labels(share, tmp_path / "x.csv")
    assert result.unknown == [{"source": "x.csv", "row": 3, "transaction_id": str(10**9)}]
    again = store_labels(share, tmp_path / "x.csv")
    assert again.unchanged == ["x.csv"] and again.stored == []
    assert len(read_stored_labels(share, D[0])) == 3
    assert read_stored_labels(share, D[0])["TRANSACTION_ID"].dtype == "int64"

def test_bad_label_values_and_missing_columns_are_named_and_quarantined(share, tmp_path):
    (tmp_path / "bad.csv").write_text("TRANSACTION_ID,TX_FRAUD\n1,1\n2,maybe\n")
    [bad] = store_labels(share, tmp_path / "bad.csv").quarantined
    assert re.search(r"bad.csv: row 1 .*'maybe'.*0 or 1", bad["reason"])
    assert Path(bad["quarantined_to"]).read_bytes() == (tmp_path / "bad.csv").read_bytes()
    (tmp_path / "cols.csv").write_text("id,label\n1,1\n")
    [cols] = store_labels(share, tmp_path / "cols.csv").quarantined
    assert re.search(r"cols.csv: no column for the TRANSACTION_ID role.*found id, label",
                     cols["reason"])
    with pytest.raises(DatasetValidationError, match="no such file"):
        store_labels(share, tmp_path / "typo.csv")

def test_a_labelled_day_after_an_arrived_one_waits_for_it(tmp_path, frames):
    # GIVEN labelled days D[0..2] on the share, then D[3] arrived without labels
    share = simulated_share(tmp_path, 3, customers=200, terminals=400, seed=1)
    arrive(share, D[3], frames[D[3]])
    # a later day that arrived labelled (copied in as ingest would write it)
    later = simulated_share(tmp_path / "later", 5, customers=200, terminals=400, seed=1)
    share.training_dataset(D[4]).write_bytes(later.training_dataset(D[4]).read_bytes())
    # THEN D[4] is not trainable before D[3] is complete
    assert trainable_days(share) == D[:3]
    complete_days(share, today=D[10])
    assert trainable_days(share) == D[:5]


def test_the_labels_command_stores_completes_and_reports(share, frames, tmp_path, capsys):
    write_labels(tmp_path / "l.csv", frames[D[0]], frauds_only=True)
    code = main(["labels", "--source", str(tmp_path / "l.csv"), "--storage", str(share.root),
                 "--today", "2018-04-08"])
    out = capsys.readouterr().out
    assert code == 0
    assert "labels     2018-04-01" in out and "complete   2018-04-01 (7-day rule)" in out
    assert main(["days", "--storage", str(share.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2018-04-01  trainable") and "7-day rule" in lines[0]
    assert lines[1].startswith("2018-04-02  awaiting labels")


def test_the_labels_command_exits_3_on_a_conflict(share, frames, tmp_path, capsys):
    row = frames[D[0]].head(1)
    write_labels(tmp_path / "a.csv", row)
    write_labels(tmp_path / "b.csv", row.assign(TX_FRAUD=1 - row.TX_FRAUD))
    assert main(["labels", "--source", str(tmp_path / "a.csv"), "--storage",
                 str(share.root)]) == 0
    assert main(["labels", "--source", str(tmp_path / "b.csv"), "--storage",
                 str(share.root)]) == 3
    assert "label conflict on 2018-04-01" in capsys.readouterr().err



def test_a_label_after_its_day_was_completed_is_stored_late_not_applied(share, frames,
                                                                       tmp_path):
    complete_days(share, today=D[7])  # D[0] completed with no label: all genuine
    before = share.training_dataset(D[0]).read_bytes()
    genuine = frames[D[0]][frames[D[0]]["TX_FRAUD"] == 0].head(1)
    write_labels(tmp_path / "late.csv", genuine.assign(TX_FRAUD=1))
    store_labels(share, tmp_path / "late.csv")
    tx = str(genuine["TRANSACTION_ID"].iloc[0])
    [late] = late_labels(share)
    assert (late["date"], late["trained"]) == ("2018-04-01", False)
    assert [(x["transaction_id"], x["label"], x["dataset_label"]) for x in late["labels"]] == [
        (tx, 1, 0)]
    assert share.training_dataset(D[0]).read_bytes() == before  # applied only by relabel

def test_the_labels_command_maps_other_column_names(share, frames, tmp_path, capsys):
    write_labels(tmp_path / "cb.csv", frames[D[1]], names=("ref", "flag"))
    assert main(["labels", "--source", str(tmp_path / "cb.csv"), "--storage", str(share.root),
                 "--map", "transaction_id=ref", "--map", "label=flag"]) == 0
    assert "complete   2018-04-02 (all labelled)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["labels", "--storage", str(share.root), "--map", "card=ref"])
    assert "ROLE one of transaction_id, label" in capsys.readouterr().err
