"""The run's headline and alerts when days arrive without labels (no Prefect server)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from flows.artifacts import build_artifacts
from flows.summary import RunSummary, ScoredDay
from tests.arrivals import arrive, write_labels
from tests.shares import simulated_share
from trainer.arrival import score_arrived_days
from trainer.backlog import train_all
from trainer.data.simulator import simulate
from trainer.share.layout import Share, create_share

ALERTS_KEY = "fraudpipe-daily-pipeline-alerts"
D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(4)]


def arrived_share(root: Path) -> Share:
    """Two labelled days trained, then 04-03 and 04-04 arrived without labels."""
    share = simulated_share(root, 2, seed=1)
    train_all(share, learner="sgd")
    frames = dict(simulate("2018-04-01", 4, customers=200, terminals=400, seed=1))
    for day in D[2:]:
        arrive(share, day, frames[day])
    return share


@pytest.fixture(scope="module")
def arrived(tmp_path_factory) -> Share:
    """The module's arrived share, built once; tests get a copy (`share`)."""
    return arrived_share(tmp_path_factory.mktemp("arrived"))


@pytest.fixture
def share(arrived: Share, tmp_path) -> Share:
    """A copy of the arrived share that the test may change."""
    shutil.copytree(arrived.root, tmp_path / "share")
    return Share.at(tmp_path / "share")


def test_todays_alerts_are_the_latest_day_scored_on_arrival(share: Share) -> None:
    # GIVEN a run that scored the two arrived days with the head (04-02)
    result = score_arrived_days(share)
    summary = RunSummary(flow="daily-pipeline",
                         scored=[ScoredDay.of_json(s) for s in result.scored],
                         awaiting=["2018-04-03", "2018-04-04"])
    # WHEN its artifacts are built
    built = build_artifacts(summary, share)
    # THEN the alerts are 04-04's, and the headline says who scored them and what waits
    assert {a["date"] for a in built.alerts} == {"2018-04-04"}
    text = built.headline
    assert text.startswith("# fraudpipe daily-pipeline: today is 2018-04-04 (scored on "
                           "arrival)\n")
    assert f"check the {len(built.alerts)} cards of the `{ALERTS_KEY}` table" in text
    assert f"card {built.alerts[0]['card_id']} (" in text
    # AND the days table shows the arrived days, newest first, and who scored them
    assert [(d["date"], d["state"], d["arrived"]) for d in built.days] == [
        ("2018-04-04", "awaiting labels", "without labels"),
        ("2018-04-03", "awaiting labels", "without labels"),
        ("2018-04-02", "trained", "labelled"), ("2018-04-01", "trained", "labelled")]
    assert built.days[0]["scored_by"] == "model_cpt_2018-04-02.skops"
    assert "Scored on arrival by the model trained through 2018-04-02" in text
    assert "- waiting for labels: 2018-04-03, 2018-04-04" in text
    assert "- days trained in this run: **0**" in text
    assert built.plot is None  # nothing trained: no plot


def test_no_model_yet_is_said_and_is_not_a_failure(tmp_path) -> None:
    share, _ = create_share(tmp_path / "empty", "test")
    arrive(share, D[0], next(iter(simulate("2018-04-01", 1, customers=200,
                                           terminals=400, seed=1)))[1])
    result = score_arrived_days(share)
    assert result.unscored == ["2018-04-01"] and not share.scores(D[0]).exists()
    summary = RunSummary(flow="daily-pipeline", unscored=result.unscored,
                         awaiting=["2018-04-01"])
    built = build_artifacts(summary, share)
    assert built.alerts == []
    assert built.headline.startswith("# fraudpipe daily-pipeline: no model yet to score")
    assert "**No alerts: nothing is trained yet.** 1 arrived day(s) (2018-04-01)" in (
        built.headline)


def test_the_score_command_scores_once_per_head_and_prints_the_top_cards(share: Share,
                                                                          capsys) -> None:
    from trainer.cli import main

    assert main(["score", "--storage", str(share.root), "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("scored 2 arrived day(s) with the model trained through 2018-04-02: "
                      "2018-04-03, 2018-04-04")
    cards = [line for line in out[1:] if not line.startswith(" ")]
    assert [line.split()[1] for line in cards] == ["#1", "#2", "#3"]
    assert all(line.startswith("2018-04-04") for line in cards)
    # each card's transactions follow it (no reasons: the sgd learner has no booster)
    details = [line.strip() for line in out[1:] if line.startswith(" ")]
    assert sum(" transaction " in line and " terminal " in line for line in details) >= 3
    assert not any(line.startswith("why: ") for line in details)
    assert main(["score", "--storage", str(share.root)]) == 0
    assert capsys.readouterr().out.startswith("no arrived day to score")


def test_a_conflicting_label_file_in_the_flow_is_reported_and_holds_back_only_its_day(
        share: Share, tmp_path) -> None:
    from prefect.logging import disable_run_logger

    from flows.arrival import complete, store_labels_from
    from trainer.labels import label_problems

    # GIVEN a labels landing area whose two files label one transaction two ways
    frames = dict(simulate("2018-04-01", 4, customers=200, terminals=400, seed=1))
    row = frames[D[2]].head(1)
    landing = tmp_path / "labels"
    landing.mkdir()
    write_labels(landing / "a.csv", row)
    write_labels(landing / "b.csv", row.assign(TX_FRAUD=1 - row["TX_FRAUD"]))
    # WHEN the flow's labels tasks run with today a week after 04-03
    with disable_run_logger():
        store_labels_from.fn(str(share.root), str(landing))
        completed = complete.fn(str(share.root), 7, "2018-04-10")
    # THEN the problem names both files and the transaction, both labels are kept, and
    # 04-03 does not complete (the N-day rule would have made the disputed label 0)
    tx = int(row["TRANSACTION_ID"].iloc[0])
    [problem] = label_problems(share)
    assert f"transaction {tx}" in problem and "a.csv row 0" in problem
    assert "b.csv row 0" in problem and share.labels(D[2]).exists()
    assert "2018-04-03" not in [c.date for c in completed]
    assert not share.training_dataset(D[2]).exists()
