"""The daily pipeline on late data: a month cut in another zone, late rows, a replaced day.

A real Prefect server (`prefect_harness`) and a real redis-server (`redis_url`). The same
rules `tests/unit/test_day_parts.py`, `test_late_rows.py` and `test_replaced_day.py` check
through the CLI, here through the flow a bank schedules: every row and every score is
checked against the data, not only the run's state.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.arrivals import LABEL_COLUMNS, write_labels
from tests.integration.test_flows import artifacts_of

pytestmark = pytest.mark.integration

ZONE = "Europe/Paris"


def _truth(months: list[Path], chargebacks: Path) -> pd.DataFrame:
    """Every exported row: tx_id, its local day in ZONE, and whether it is a fraud."""
    rows = pd.concat([pd.read_csv(m) for m in months], ignore_index=True)
    frauds = set(pd.concat(pd.read_csv(f) for f in chargebacks.glob("*.csv"))["tx_id"])
    local = pd.to_datetime(rows["timestamp"], utc=True).dt.tz_convert(ZONE).dt.date
    return pd.DataFrame({"tx_id": rows["tx_id"], "day": local,
                         "fraud": rows["tx_id"].isin(frauds).astype(int)})


def _check_trained(share, truth: pd.DataFrame, days: list[dt.date]) -> None:
    """Each day's training dataset holds exactly its local rows and frauds; chain verified."""
    from trainer.share.files import sha256_file
    from trainer.share.lineage import verify

    chain = verify(share)
    assert [e.date for e in chain] == days
    for entry in chain:
        data = pd.read_parquet(share.training_dataset(entry.date))
        expected = truth[truth["day"] == entry.date]
        assert sorted(data["TRANSACTION_ID"]) == sorted(expected["tx_id"]), entry.date
        assert int(data["TX_FRAUD"].sum()) == int(expected["fraud"].sum()), entry.date
        assert entry.dataset_sha256 == sha256_file(share.training_dataset(entry.date))


def test_daily_pipeline_builds_days_cut_across_month_files_and_merges_late_rows(
        prefect_harness: str, redis_url: str, tmp_path: Path) -> None:
    from flows.pipeline import daily_pipeline
    from trainer.cli import main
    from trainer.days import day_states
    from trainer.share.layout import create_share
    from trainer.share.lineage import Lineage
    from trainer.share.manifest import read_manifest

    # GIVEN a bank export cut by month at UTC midnight, read by a share in Europe/Paris:
    # local 2018-04-01 starts in the March file and goes on in the April file
    export = tmp_path / "export"
    assert main(["simulate", "--out", str(export), "--start", "2018-03-25", "--days", "12",
                 "--customers", "200", "--terminals", "400", "--seed", "1",
                 "--format", "bank-export"]) == 0
    march, april = sorted((export / "transactions").glob("*.csv"))
    truth = _truth([march, april], export / "chargebacks")
    share, _ = create_share(tmp_path / "share", "test")
    mapping = json.loads((export / "fraudpipe-mapping.json").read_text())
    (share.root / "fraudpipe-mapping.json").write_text(json.dumps({**mapping,
                                                                    "timezone": ZONE}))
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / march.name).write_bytes(march.read_bytes())
    # AND some rows of local 04-03 (a fraud among them) held back by the bank for a late file
    rows = pd.read_csv(april)
    day3 = truth.set_index("tx_id").loc[rows["tx_id"], "day"].to_numpy() == dt.date(2018, 4, 3)
    frauds = rows["tx_id"].isin(truth.loc[truth["fraud"] == 1, "tx_id"]).to_numpy()
    late = pd.concat([rows[day3 & frauds].head(1), rows[day3 & ~frauds].head(9)])
    params = {"storage": str(share.root), "redis_url": redis_url, "learner": "sgd",
              "labels": str(export / "chargebacks"), "today": "2018-04-30",
              "retry_backoff_seconds": 0.05}
    days = [dt.date(2018, 3, 25) + dt.timedelta(days=i) for i in range(13)]

    # WHEN the daily pipeline runs with only the March file
    first = daily_pipeline(str(landing), **params, return_state=True)

    # THEN local 04-01 is open (no row after its end yet): not completed, not trained;
    # the days before it train with every row and fraud
    assert first.is_completed(), first.message
    assert not share.training_dataset(days[7]).exists()
    assert "2018-04-01" in first.result()["awaiting"]
    _check_trained(share, truth, days[:7])

    # WHEN the April file arrives (without the rows held back) and the pipeline runs again
    rows.drop(index=late.index).to_csv(landing / april.name, index=False)
    second = daily_pipeline(str(landing), **params, return_state=True)

    # THEN 04-01 is merged from both files, complete and trained with all its rows; the
    # last local day (two hours in the April file) stays open: no later data shows it over
    assert second.is_completed(), second.message
    assert second.result()["refused"] == [], second.result()["refused"]
    parts = read_manifest(share)["arrived/2018-04-01"]["parts"]
    assert sorted(p["source"] for p in parts) == [march.name, april.name]
    without_late = truth[~truth["tx_id"].isin(late["tx_id"])]
    _check_trained(share, without_late, days[:12])
    assert second.result()["awaiting"] == ["2018-04-06"]
    assert {d["date"]: d["state"] for d in day_states(share)}["2018-04-06"] == "open"

    # WHEN the day is closed by hand and the late file arrives for the trained 04-03
    assert main(["close", "--date", "2018-04-06", "--storage", str(share.root)]) == 0
    late.to_csv(landing / "transactions-2018-04-late.csv", index=False)
    trained_on = Lineage.load(share).entry_for(days[9]).dataset_sha256
    third = daily_pipeline(str(landing), **params, return_state=True)

    # THEN 04-06 trains; the late rows are kept aside and the headline says so, and the
    # month files read again change nothing (no day refused)
    assert third.is_completed(), third.message
    assert third.result()["refused"] == [], third.result()["refused"]
    assert Lineage.load(share).entry_for(days[9]).dataset_sha256 == trained_on
    _check_trained(share, without_late, days)
    headline = artifacts_of(third.state_details.flow_run_id)["headline"].data
    assert f"{len(late)} late row(s) on 1 trained day(s)" in headline, headline

    # WHEN the pipeline runs with the policy that applies late data
    fourth = daily_pipeline(str(landing), **params, apply_late_labels=True,
                            return_state=True)

    # THEN 04-03 holds every row and fraud (its late fraud's chargeback applied) and the
    # chain was trained again from it: every exported row is in the trained chain
    assert fourth.is_completed(), fourth.message
    assert fourth.result()["refused"] == [], fourth.result()["refused"]
    assert [t["date"] for t in fourth.result()["trained"]] == [
        d.isoformat() for d in days[9:]]
    _check_trained(share, truth, days)
    assert sum(len(pd.read_parquet(share.training_dataset(d))) for d in days) == len(truth)


def test_daily_pipeline_scores_a_replaced_day_again_with_the_days_that_read_it(
        prefect_harness: str, redis_url: str, tmp_path: Path) -> None:
    from flows.pipeline import daily_pipeline
    from trainer.arrival import scored_by
    from trainer.cli import main
    from trainer.data.simulator import simulate, write_day
    from trainer.report import card_alerts
    from trainer.share.layout import Share, create_share
    from trainer.share.manifest import manifest_key, read_manifest

    frames = dict(simulate("2018-04-01", 5, customers=200, terminals=400, seed=1))
    days = sorted(frames)
    corrected = frames[days[3]].iloc[4:].drop(columns=LABEL_COLUMNS)
    corrected = corrected.assign(TX_AMOUNT=corrected["TX_AMOUNT"] + 1.0)
    removed = frames[days[3]].head(4)

    def landing_with(root: Path, fourth: pd.DataFrame) -> Path:
        for day in days[:3]:  # three labelled days, two that arrive without labels
            write_day(frames[day], root, day)
        fourth.to_parquet(root / f"{days[3]}.parquet", index=False)
        frames[days[4]].drop(columns=LABEL_COLUMNS).to_parquet(root / f"{days[4]}.parquet",
                                                               index=False)
        return root

    share, _ = create_share(tmp_path / "share", "test")
    labels = tmp_path / "labels"
    labels.mkdir()
    landing = landing_with(tmp_path / "landing", frames[days[3]].drop(columns=LABEL_COLUMNS))
    params = {"storage": str(share.root), "redis_url": redis_url, "learner": "sgd",
              "labels": str(labels), "retry_backoff_seconds": 0.05}
    # GIVEN a run that trained the labelled days and scored 04-04 and 04-05 on arrival,
    # AND labels for four transactions of 04-04 that the bank's correction then removes
    write_labels(labels / "early.csv", removed)
    first = daily_pipeline(str(landing), **params, return_state=True)
    assert first.is_completed(), first.message
    assert [s["date"] for s in first.result()["scored"]] == ["2018-04-04", "2018-04-05"]
    old = {d: pd.read_parquet(share.scores(d)) for d in days[3:]}

    # WHEN the corrected 04-04 replaces the file in the landing area and the pipeline runs
    corrected.to_parquet(landing / f"{days[3]}.parquet", index=False)
    second = daily_pipeline(str(landing), **params, return_state=True)

    # THEN 04-04 and 04-05 (whose features read 04-04) are scored again from the new rows
    assert second.is_completed(), second.message
    result = second.result()
    assert [(e["date"], e["replaced"]) for e in result["ingested"]] == [("2018-04-04", True)]
    assert [s["date"] for s in result["scored"]] == ["2018-04-04", "2018-04-05"]
    new = {d: pd.read_parquet(share.scores(d)) for d in days[3:]}
    assert sorted(new[days[3]]["TRANSACTION_ID"]) == sorted(corrected["TRANSACTION_ID"])
    assert not new[days[4]]["FRAUD_SCORE"].equals(old[days[4]]["FRAUD_SCORE"])
    # AND the scores equal those of a share that had the corrected day from the start
    clean = tmp_path / "clean"
    assert main(["ingest", "--source", str(landing_with(tmp_path / "clean-in", corrected)),
                 "--storage", str(clean)]) == 0
    assert main(["train", "--storage", str(clean), "--learner", "sgd"]) == 0
    assert main(["score", "--storage", str(clean)]) == 0
    for day in days[3:]:
        theirs = pd.read_parquet(Share.at(clean).scores(day))
        assert new[day][["TRANSACTION_ID", "FRAUD_SCORE"]].equals(
            theirs[["TRANSACTION_ID", "FRAUD_SCORE"]]), day
        assert scored_by(share, day)["sha256"] == scored_by(Share.at(clean), day)["sha256"]
    # AND the day's list names no transaction that is gone
    listed = {t["transaction_id"] for a in card_alerts(share, days[3])
              for t in a["transaction_list"]}
    assert listed and listed <= set(corrected["TRANSACTION_ID"])
    # AND the labels of the removed transactions are reported in the headline, and kept
    # in the day's manifest entry once the N-day rule completes it
    headline = artifacts_of(second.state_details.flow_run_id)["headline"].data
    assert "4 label(s) name transaction(s) no longer in 2018-04-04" in headline, headline
    third = daily_pipeline(str(landing), **params, today="2018-04-30", return_state=True)
    assert third.is_completed(), third.message
    entry = read_manifest(share)[manifest_key("training", days[3])]
    assert sorted(entry["labels_for_missing_ids"]) == sorted(map(str,
                                                                 removed["TRANSACTION_ID"]))


def test_daily_pipeline_holds_back_the_day_a_quarantined_label_file_names(
        prefect_harness: str, redis_url: str, tmp_path: Path) -> None:
    from flows.pipeline import daily_pipeline
    from trainer.data.simulator import simulate
    from trainer.share.layout import create_share
    from trainer.share.lineage import verify

    share, _ = create_share(tmp_path / "share", "test")
    frames = dict(simulate("2018-04-01", 6, customers=200, terminals=400, seed=1))
    days = sorted(frames)
    landing, labels = tmp_path / "landing", tmp_path / "labels"
    landing.mkdir()
    labels.mkdir()
    for day in days:  # GIVEN six days that arrive unlabelled, with their chargebacks
        frames[day].drop(columns=LABEL_COLUMNS).to_parquet(landing / f"{day}.parquet",
                                                           index=False)
        write_labels(labels / f"{day}.csv", frames[day], frauds_only=True)
    # AND a bad label file naming a genuine transaction of the third day
    genuine = frames[days[2]][frames[days[2]]["TX_FRAUD"] == 0].head(1)
    tx = str(genuine["TRANSACTION_ID"].iloc[0])
    (labels / "review.csv").write_text(f"TRANSACTION_ID,TX_FRAUD\n{tx},maybe\n")
    params = {"storage": str(share.root), "redis_url": redis_url, "learner": "sgd",
              "labels": str(labels), "today": "2018-04-30", "retry_backoff_seconds": 0.05}

    # WHEN the daily pipeline runs
    state = daily_pipeline(str(landing), **params, return_state=True)

    # THEN the file is quarantined with its reason, its day waits (and every day after
    # it, strict date order), the days before it train with their frauds; the run says
    # why in its headline and ends Failed
    assert state.is_failed()
    assert "label file in quarantine: review.csv" in state.message
    [reason] = share.quarantine_dir.glob("*review.csv.reason.txt")
    assert "maybe" in reason.read_text()
    headline = artifacts_of(state.state_details.flow_run_id)["headline"].data
    assert "review.csv" in headline and "2018-04-03" in headline, headline
    assert not share.training_dataset(days[2]).exists()
    assert [e.date for e in verify(share)] == days[:2]
    for day in days[:2]:
        data = pd.read_parquet(share.training_dataset(day))
        assert int(data["TX_FRAUD"].sum()) == int(frames[day]["TX_FRAUD"].sum())

    # WHEN the file is delivered again corrected, and the pipeline runs
    (labels / "review.csv").write_text(f"TRANSACTION_ID,TX_FRAUD\n{tx},0\n")
    again = daily_pipeline(str(landing), **params, return_state=True)

    # THEN every day is complete and trained, each with exactly its frauds
    assert again.is_completed(), again.message
    assert [e.date for e in verify(share)] == days
    for day in days:
        data = pd.read_parquet(share.training_dataset(day))
        assert int(data["TX_FRAUD"].sum()) == int(frames[day]["TX_FRAUD"].sum()), day
