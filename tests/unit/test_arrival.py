"""Scored on arrival, trained when the labels come: the same model as the labelled days.

Twelve small simulated days reach two shares. On the first they arrive labelled, as the
simulator writes them, and are trained at once. On the second they arrive one a day
without labels, with the bank's own (text) card ids, and the confirmed frauds of each day
come a week later in a chargeback file; each "morning" the second share applies the
7-day rule, trains what it can and scores the day that just arrived with its head. Every
checkpoint, every feature and every score must be the same on both.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.arrivals import arrive, write_labels
from tests.shares import simulated_share
from trainer.arrival import arrived_features, score_arrived_days, scored_by
from trainer.backlog import train_all
from trainer.days import day_states
from trainer.evaluation.scoring import score_day
from trainer.features.compute import FEATURE_COLUMNS
from trainer.features.store import features_for_day
from trainer.label_files import store_labels
from trainer.labels import complete_days
from trainer.report import card_alerts
from trainer.share.checkpoints import load_checkpoint
from trainer.share.layout import create_share
from trainer.share.lineage import Lineage, verify

DAYS = 9
N = 7
LEARNER = "sgd"  # the fast learner: the point is equality, not quality
SIM = {"customers": 200, "terminals": 400, "seed": 1}


def bank_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """The bank's card ids: text, not the simulator's integers."""
    return frame.assign(CUSTOMER_ID="card-" + frame["CUSTOMER_ID"].astype(str))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """The simulator's labelled days, ingested and trained at once."""
    share = simulated_share(tmp_path_factory.mktemp("labelled"), DAYS, **SIM)
    train_all(share, learner=LEARNER)
    return share


@pytest.fixture(scope="module")
def arrived(tmp_path_factory, labelled):
    """The same days arriving unlabelled, day by day; what was seen each morning."""
    from trainer.data.simulator import simulate

    root = tmp_path_factory.mktemp("arrived")
    share, _ = create_share(root / "share", "test")
    frames = dict(simulate("2018-04-01", DAYS, **SIM))
    days = sorted(frames)
    mornings = {}
    for i, day in enumerate(days):
        arrive(share, day, bank_ids(frames[day]))
        if i >= N:  # the chargebacks of the day a week ago: its confirmed frauds only
            write_labels(root / f"chargebacks-{day}.csv", frames[days[i - N]], frauds_only=True,
                         names=("tx_id", "is_fraud"))
            store_labels(share, root / f"chargebacks-{day}.csv")
        completed = complete_days(share, genuine_after_days=N)
        trained = train_all(share, learner=LEARNER)
        features = arrived_features(share, day)
        scoring = score_arrived_days(share)
        mornings[day] = {"completed": completed, "trained": trained, "features": features,
                         "scoring": scoring, "scored_by": scored_by(share, day),
                         "scores": (pd.read_parquet(share.scores(day))
                                    if share.scores(day).is_file() else None)}
    return share, days, mornings, frames


def test_nothing_is_scored_before_the_first_day_is_trained(arrived):
    share, days, mornings, _ = arrived
    first = mornings[days[0]]["scoring"]
    assert first.scored == [] and first.unscored == [days[0].isoformat()]
    assert "no head model yet (nothing trained)" in first.message
    assert [m["trained"] for d, m in mornings.items() if d < days[N]] == [[]] * N


def test_each_day_is_completed_by_the_n_day_rule_exactly_n_days_later(arrived):
    share, days, mornings, _ = arrived
    for i, day in enumerate(days):
        expected = [days[i - N]] if i >= N else []
        assert [c["date"] for c in mornings[day]["completed"]] == [
            d.isoformat() for d in expected]
        assert [r.date for r in mornings[day]["trained"]] == expected


def test_arrival_features_equal_the_labelled_days_features(arrived, labelled):
    share, days, mornings, _ = arrived
    for day in days:
        ours = mornings[day]["features"]
        theirs = features_for_day(labelled, day)
        assert ours["TRANSACTION_ID"].tolist() == theirs["TRANSACTION_ID"].tolist()
        for name in FEATURE_COLUMNS:
            np.testing.assert_array_equal(ours[name].to_numpy(), theirs[name].to_numpy(),
                                          err_msg=f"{day} {name}")


def test_arrival_scores_are_the_head_checkpoints_scores_on_the_labelled_features(arrived,
                                                                                 labelled):
    share, days, mornings, _ = arrived
    chain = {e.date.isoformat(): e for e in verify(labelled)}
    for day in days[N:]:
        by = mornings[day]["scored_by"]
        head_day = (day - dt.timedelta(days=N)).isoformat()
        assert by["trained_through"] == head_day and by["sha256"] == chain[head_day].sha256
        model = load_checkpoint(labelled.root / chain[head_day].checkpoint,
                                chain[head_day].sha256)
        frame = features_for_day(labelled, day)
        scores = mornings[day]["scores"]
        np.testing.assert_array_equal(scores["FRAUD_SCORE"].to_numpy(),
                                      score_day(model, frame, LEARNER))
        assert scores["CUSTOMER_ID"].str.startswith("card-").all()


def test_alerts_name_the_banks_own_card_ids(arrived):
    share, days, _, _ = arrived
    alerts = card_alerts(share, days[-1])
    assert alerts[0]["rank"] == 1 and alerts[0]["card_id"].startswith("card-")
    assert alerts[0]["scores_file"] == str(share.scores(days[-1]))


def test_once_the_last_labels_come_the_checkpoints_and_scores_equal_the_labelled_run(
        arrived, labelled):
    share, days, _, frames = arrived
    # GIVEN the days still waiting, scored on arrival by the latest head
    waiting = [d["date"] for d in day_states(share) if d["state"] == "awaiting labels"]
    assert waiting == [d.isoformat() for d in days[DAYS - N:]]
    head = Lineage.load(share).head
    assert all(scored_by(share, d)["sha256"] == head for d in days[DAYS - N:])
    # WHEN a week passes and the chargebacks of those days come: the rest is genuine
    root = share.root.parent
    for day in days[DAYS - N:]:
        write_labels(root / f"late-{day}.csv", frames[day], frauds_only=True)
    store_labels(share, root)
    complete_days(share, today=days[-1] + dt.timedelta(days=N), genuine_after_days=N)
    train_all(share, learner=LEARNER)
    # THEN the chain is the labelled run's, checkpoint for checkpoint
    assert [(e.date, e.sha256) for e in verify(share)] == [
        (e.date, e.sha256) for e in verify(labelled)]
    # AND every day's scores (now the step's, by the model before the day) are equal
    for day in days[1:]:
        ours, theirs = pd.read_parquet(share.scores(day)), pd.read_parquet(labelled.scores(day))
        np.testing.assert_array_equal(ours["FRAUD_SCORE"].to_numpy(),
                                      theirs["FRAUD_SCORE"].to_numpy())
        assert (ours["CUSTOMER_ID"] == "card-" + theirs["CUSTOMER_ID"].astype(str)).all()
    # AND the record says how each day was labelled and what scored it
    states = day_states(share)
    assert {s["state"] for s in states} == {"trained"}
    assert [s["labelled_by"] for s in states] == [f"{N}-day rule"] * DAYS
    assert states[1]["scored_by"] == f"output/model_cpt_{days[0].isoformat()}.skops"


def test_an_arrived_days_list_is_the_one_scored_on_arrival(arrived):
    import json

    from trainer.outcomes import list_path

    share, days, mornings, _ = arrived
    for day in days[N:]:
        saved = json.loads(list_path(share, day).read_text())
        assert saved["scored_by"] == "on arrival, before its labels"
        scores = mornings[day]["scores"]
        ranked = scores.dropna(subset=["CARD_RANK"]).drop_duplicates("CUSTOMER_ID")
        assert saved["cards"] == ranked.sort_values("CARD_RANK")["CUSTOMER_ID"].tolist()
