"""New rows of a day already trained are kept aside, shown, and merged by relabel + replay.

A bank's file for a day can come after the day was trained (later than the lateness
allowed, a re-sent export). Its rows belong to the day; the lineage says what the day was
trained on, so the ingest keeps the merged day aside until the chain is rewound before it.
"""

import datetime as dt
import json

import pandas as pd
import pytest

from tests.arrivals import LABEL_COLUMNS, write_labels
from trainer.cli import main
from trainer.data.simulator import simulate, write_day
from trainer.share.files import sha256_file
from trainer.share.layout import Share, create_share
from trainer.share.lineage import verify

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(6)]
LATE = 12  # rows of D[1] that come in a late file


@pytest.fixture(scope="module")
def frames():
    return dict(simulate("2018-04-01", 6, customers=200, terminals=400, seed=1))


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The day's rows without `LATE` of them (frauds among them), and those rows."""
    late = pd.concat([frame[frame["TX_FRAUD"] == 1].head(2),
                      frame[frame["TX_FRAUD"] == 0].tail(LATE - 2)])
    return frame.drop(index=late.index), late


def _days(share, capsys) -> dict[str, dict]:
    capsys.readouterr()
    assert main(["days", "--storage", str(share.root), "--json"]) == 0
    return {d["date"]: d for d in json.loads(capsys.readouterr().out)}


def _whole_day_sha(tmp_path, frame, day, *, labelled: bool) -> str:
    """The dataset the ingest writes for `day` from one file of all its rows."""
    single = Share.at(tmp_path / "single")
    path = tmp_path / "single-in" / f"{day}.parquet"
    path.parent.mkdir()
    (frame if labelled else frame.drop(columns=LABEL_COLUMNS)).to_parquet(path, index=False)
    assert main(["ingest", "--source", str(path), "--storage", str(single.root)]) == 0
    return sha256_file(single.dataset("training" if labelled else "arrived", day))


def _trained_with_d1_short(tmp_path, frames, days: int) -> tuple[Share, str]:
    """A share of the first `days` labelled days, D[1] short of LATE rows, all trained;
    with the sha256 of D[1]'s trained dataset."""
    share = Share.at(tmp_path / "share")
    landing = tmp_path / "landing"
    early, _ = _split(frames[D[1]])
    for day in D[:days]:
        write_day(early if day == D[1] else frames[day], landing, day)
    assert main(["ingest", "--source", str(landing), "--storage", str(share.root)]) == 0
    assert main(["train", "--storage", str(share.root), "--learner", "sgd"]) == 0
    return share, sha256_file(share.training_dataset(D[1]))


def test_late_rows_of_a_trained_labelled_day_are_held_then_merged_by_relabel(
        tmp_path, frames, capsys):
    # GIVEN five labelled days, D[1] short of LATE rows, all trained
    share, trained = _trained_with_d1_short(tmp_path, frames, 5)
    late = _split(frames[D[1]])[1]
    before = verify(share)

    # WHEN a late file brings the missing rows of D[1]
    late.to_parquet(tmp_path / "late-export.parquet", index=False)
    capsys.readouterr()
    assert main(["ingest", "--source", str(tmp_path / "late-export.parquet"), "--storage",
                 str(share.root)]) == 0
    out = capsys.readouterr().out

    # THEN they are kept aside, said so with the command that applies them; nothing trained
    # changes and the record still verifies
    assert f"held       {D[1]} <- " in out and f"its {LATE} late row(s)" in out, out
    assert f"fraudpipe relabel --storage {share.root}" in out
    assert out.splitlines()[-1].endswith("1 held for a trained day"), out
    assert sha256_file(share.training_dataset(D[1])) == trained
    assert verify(share) == before
    day = _days(share, capsys)[D[1].isoformat()]
    assert day["state"] == "trained" and day["late_rows"] == LATE
    assert day["late_row_sources"] == ["late-export.parquet"]
    # AND the same file again changes nothing
    capsys.readouterr()
    assert main(["ingest", "--source", str(tmp_path / "late-export.parquet"), "--storage",
                 str(share.root)]) == 0
    assert "0 ingested, 1 unchanged" in capsys.readouterr().out
    # AND `fraudpipe labels` names them among the late data
    assert main(["labels", "--storage", str(share.root)]) == 0
    assert f"{LATE} late row(s) on 1 trained day(s)" in capsys.readouterr().out

    # WHEN relabel runs
    assert main(["relabel", "--storage", str(share.root), "--learner", "sgd"]) == 0
    out = capsys.readouterr().out

    # THEN D[1] holds every row, as one file of the whole day gives, and the chain was
    # trained again from D[1] (D[0]'s checkpoint kept)
    assert f"late rows merged into 1 day(s): {D[1]} ({LATE} from late-export.parquet)" in out
    assert sha256_file(share.training_dataset(D[1])) == _whole_day_sha(
        tmp_path, frames[D[1]], D[1], labelled=True)
    chain = verify(share)
    assert [e.date for e in chain] == D[:5]
    assert chain[1].dataset_sha256 == sha256_file(share.training_dataset(D[1]))
    assert chain[0] == before[0] and chain[1].sha256 != before[1].sha256
    assert _days(share, capsys)[D[1].isoformat()]["late_rows"] == 0


def test_late_rows_of_a_trained_unlabelled_day_get_their_chargebacks(tmp_path, frames,
                                                                      capsys):
    share, _ = create_share(tmp_path / "share", "test")
    landing = tmp_path / "landing"
    landing.mkdir()
    early, late = _split(frames[D[1]])
    for day in D:  # GIVEN six days that arrive unlabelled, D[1] short of LATE rows
        rows = early if day == D[1] else frames[day]
        rows.drop(columns=LABEL_COLUMNS).to_parquet(landing / f"{day}.parquet", index=False)
    assert main(["ingest", "--source", str(landing), "--storage", str(share.root)]) == 0
    # AND every chargeback of the range, the late rows' frauds among them
    everything = pd.concat(frames.values())
    write_labels(tmp_path / "chargebacks.csv", everything, frauds_only=True)
    assert main(["labels", "--source", str(tmp_path / "chargebacks.csv"), "--storage",
                 str(share.root), "--today", "2018-04-11"]) == 0
    assert main(["train", "--storage", str(share.root), "--learner", "sgd"]) == 0
    assert [e.date for e in verify(share)] == D[:4]

    # WHEN the late rows come (unlabelled, like the rest of the export)
    late.drop(columns=LABEL_COLUMNS).to_parquet(tmp_path / "late.parquet", index=False)
    capsys.readouterr()
    assert main(["ingest", "--source", str(tmp_path / "late.parquet"), "--storage",
                 str(share.root)]) == 0
    assert f"held       {D[1]} <- " in capsys.readouterr().out
    assert _days(share, capsys)[D[1].isoformat()]["late_rows"] == LATE

    # WHEN relabel runs
    assert main(["relabel", "--storage", str(share.root), "--learner", "sgd"]) == 0

    # THEN the day's rows are all there, its training dataset has the late rows' frauds
    # (their chargebacks waited on the share), and the chain is whole again
    assert sha256_file(share.arrived_dataset(D[1])) == _whole_day_sha(
        tmp_path, frames[D[1]], D[1], labelled=False)
    data = pd.read_parquet(share.training_dataset(D[1]))
    assert len(data) == len(frames[D[1]])
    assert int(data["TX_FRAUD"].sum()) == int(frames[D[1]]["TX_FRAUD"].sum())
    assert [e.date for e in verify(share)] == D[:4]
    states = _days(share, capsys)
    assert states[D[1].isoformat()]["late_rows"] == 0
    assert all(d["late_labels"] == 0 for d in states.values())


def test_a_trained_days_file_sent_again_with_more_rows_is_held_with_a_change_refused(
        tmp_path, frames, capsys):
    # GIVEN three labelled days, D[1] short of LATE rows, all trained
    share, trained = _trained_with_d1_short(tmp_path, frames, 3)
    early = _split(frames[D[1]])[0]
    again = tmp_path / "again"

    # WHEN the bank sends D[1]'s file again with one of its rows changed (and the late ones)
    changed = frames[D[1]].copy()
    changed.loc[early.index[0], "TX_AMOUNT"] += 1.0
    write_day(changed, again, D[1])
    capsys.readouterr()
    assert main(["ingest", "--source", str(again), "--storage", str(share.root)]) == 0
    out = capsys.readouterr().out
    # THEN it is refused: a row the day was trained on would change; the replay is named
    assert "refused" in out and "changes or removes rows" in out, out
    assert f"fraudpipe replay --from {D[0]} --rewind-only" in out
    assert sha256_file(share.training_dataset(D[1])) == trained

    # WHEN it is sent again right: every row as before, plus the late ones
    write_day(frames[D[1]], again, D[1])
    assert main(["ingest", "--source", str(again), "--storage", str(share.root)]) == 0
    out = capsys.readouterr().out
    # THEN the new rows are kept aside, and relabel makes the day that file's content
    assert f"its {LATE} late row(s)" in out, out
    assert sha256_file(share.training_dataset(D[1])) == trained
    assert main(["relabel", "--storage", str(share.root), "--learner", "sgd"]) == 0
    assert sha256_file(share.training_dataset(D[1])) == _whole_day_sha(
        tmp_path, frames[D[1]], D[1], labelled=True)
    assert [e.date for e in verify(share)] == D[:3]
    # AND the file is on the share as it is: ingesting it again changes nothing
    capsys.readouterr()
    assert main(["ingest", "--source", str(again), "--storage", str(share.root)]) == 0
    assert "0 ingested, 1 unchanged" in capsys.readouterr().out
