"""A day's list, once its labels are in: cards confirmed among those checked, frauds missed.

Small simulated days are trained (each scored by the model before it, its list saved);
the outcomes recorded on the share must equal a recount from the simulator's own labels.
An arrived day's list is the one scored on arrival, kept when the step rescores the day.
"""

import datetime as dt
import json

import pandas as pd
import pytest

from tests.shares import simulated_share
from trainer.backlog import train_all
from trainer.data.simulator import simulate
from trainer.outcomes import list_path, outcome_path, record_outcomes, save_list

DAYS = 6
SIM = {"customers": 300, "terminals": 600, "seed": 3}


@pytest.fixture(scope="module")
def share(tmp_path_factory):
    share = simulated_share(tmp_path_factory.mktemp("outcomes"), DAYS, **SIM)
    train_all(share, learner="sgd")
    return share


@pytest.mark.parametrize("capacity", [100, 15])
def test_outcomes_equal_a_recount_from_the_labels(share, capacity):
    outcomes = record_outcomes(share, capacity)
    frames = dict(simulate("2018-04-01", DAYS, **SIM))
    assert [o["date"] for o in outcomes] == [d.isoformat() for d in sorted(frames)[1:]]
    for o in outcomes:
        day = dt.date.fromisoformat(o["date"])
        labels = frames[day]
        scores = pd.read_parquet(share.scores(day))
        best = (scores.groupby("CUSTOMER_ID")["FRAUD_SCORE"].max().reset_index()
                .sort_values(["FRAUD_SCORE", "CUSTOMER_ID"], ascending=[False, True]))
        checked = set(best["CUSTOMER_ID"].head(capacity).astype(str))
        frauds = set(labels.loc[labels["TX_FRAUD"] == 1, "CUSTOMER_ID"].astype(str))
        assert (o["checked"], o["confirmed"], o["fraud_cards"], o["missed"]) == (
            len(checked), len(checked & frauds), len(frauds), len(frauds - checked))
        assert o["hit_rate"] == round(len(checked & frauds) / len(checked), 4)
        assert set(o["missed_cards"]) == frauds - checked
        assert json.loads(outcome_path(share, day).read_text()) == o


def test_a_list_is_saved_once_the_first_ranking_stays(share):
    day = dt.date(2018, 4, 2)
    before = json.loads(list_path(share, day).read_text())
    assert before["scored_by"] == "by the step, labels known" and len(before["cards"]) == 100
    assert not save_list(share, day, pd.Series([1, 2]).to_numpy(), pd.Series([1, 2]), "x")
    assert json.loads(list_path(share, day).read_text()) == before


def test_the_alerts_command_prints_the_outcomes(share, capsys):
    from trainer.cli import main

    assert main(["alerts", "--outcomes", "--storage", str(share.root),
                 "--review-capacity", "15"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == DAYS - 1
    assert lines[0].startswith("2018-04-02  checked 15, confirmed fraud ")
    assert main(["alerts", "--storage", str(share.root), "--top", "2"]) == 0
    cards = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert [line.split()[1] for line in cards] == ["#1", "#2"]


def test_the_headline_shows_the_last_lists_and_the_review_capacity(share):
    from flows.artifacts import build_artifacts
    from flows.summary import RunSummary, TrainedDay
    from flows.today import outcomes_table

    # GIVEN a run that trained the last day, for a team that checks 15 cards a day
    summary = RunSummary(flow="daily-pipeline", trained=[TrainedDay(f"2018-04-0{DAYS}")],
                         review_capacity=15)
    # WHEN its artifacts are built
    built = build_artifacts(summary, share)
    # THEN today's list has 15 cards, the headline says why and shows the last lists
    assert len(built.alerts) == 15
    assert "The team checks **15 cards a day**" in built.headline
    assert "## Last lists" in built.headline and "Hit-rate trend (%, oldest first): " in (
        built.headline)
    newest = built.outcomes[-1]
    assert (f"| {newest['date']} | 15 | {newest['confirmed']} | " in built.headline)
    table = outcomes_table(built.outcomes)
    assert [row["date"] for row in table] == [o["date"] for o in reversed(built.outcomes)]
    assert all(row["checked"] == 15 for row in table)


def test_an_unchanged_outcome_is_left_as_it_is_a_changed_one_rewritten(share):
    # GIVEN every list's outcome recorded once
    record_outcomes(share, 100)
    day = dt.date(2018, 4, 3)
    path = outcome_path(share, day)
    before = path.stat().st_ino
    # WHEN they are recorded again with nothing changed, then with another capacity
    record_outcomes(share, 100)
    same = path.stat().st_ino
    record_outcomes(share, 15)
    # THEN the first leaves the file (an atomic rewrite would give a new inode), the
    # second replaces it with the new outcome
    assert same == before
    assert path.stat().st_ino != before and json.loads(path.read_text())["capacity"] == 15
    record_outcomes(share, 100)
