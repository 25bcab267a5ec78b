"""The bank-export example end to end: ingested, scored on arrival, trained when labelled.

One simulated range is written twice (`fraudpipe simulate`): as the simulator's labelled
days, ingested and trained at once, and as a bank export (text ids, UTC timestamps, no
label, chargebacks a week later). The export's transactions arrive one day a morning;
each morning the CLI ingests the day, files the chargebacks reported that day (the
7-day rule completes the day a week old), trains and scores. The chain, every checkpoint
and every score must be the simulator's, and the alerts name the bank's card ids.
"""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from trainer.cli import main
from trainer.days import day_states
from trainer.share.layout import Share
from trainer.share.lineage import Lineage, verify

START, DAYS, N = dt.date(2018, 4, 1), 9, 7
SIZE = ["--customers", "200", "--terminals", "400", "--seed", "1"]
LEARNER = ["--learner", "sgd"]  # the fast learner: the point is equality, not quality


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bank")
    common = ["--start", START.isoformat(), "--days", str(DAYS), *SIZE]
    assert main(["simulate", "--out", str(root / "sim"), *common]) == 0
    assert main(["simulate", "--out", str(root / "bank"), *common,
                 "--format", "bank-export"]) == 0
    labelled = Share.at(root / "labelled")
    assert main(["ingest", "--source", str(root / "sim"), "--storage", str(labelled.root)]) == 0
    assert main(["train", "--storage", str(labelled.root), *LEARNER]) == 0
    # the month file, cut into the days as they would arrive (names need not be dates)
    month = pd.read_csv(root / "bank" / "transactions" / "transactions-2018-04.csv")
    daily = root / "daily"
    daily.mkdir()
    for day, rows in month.groupby(month["timestamp"].str[:10]):
        rows.to_csv(daily / f"export-{day}.csv", index=False)
    arrived = Share.at(root / "arrived")
    mapping = str(root / "bank" / "fraudpipe-mapping.json")
    days = [START + dt.timedelta(days=n) for n in range(DAYS)]
    mornings = {}
    for day in days:
        assert main(["ingest", "--source", str(daily / f"export-{day}.csv"), "--storage",
                     str(arrived.root), "--mapping", mapping]) == 0
        chargebacks = root / "bank" / "chargebacks" / f"{day}.csv"
        if chargebacks.is_file():
            assert main(["labels", "--source", str(chargebacks), "--storage",
                         str(arrived.root)]) == 0
        assert main(["train", "--storage", str(arrived.root), *LEARNER]) == 0
        assert main(["score", "--storage", str(arrived.root)]) == 0
        path = arrived.scores(day)
        mornings[day] = pd.read_parquet(path) if path.is_file() else None
    return root, labelled, arrived, days, mornings


def test_each_morning_scores_the_new_day_with_the_head_of_the_labelled_run(runs):
    root, labelled, arrived, days, mornings = runs
    chain = {e.date.isoformat(): e for e in verify(labelled)}
    assert all(mornings[d] is None for d in days[:N])  # nothing trained yet: no scores
    from trainer.evaluation.scoring import score_day
    from trainer.features.store import features_for_day
    from trainer.share.checkpoints import load_checkpoint

    for day in days[N:]:
        head = chain[(day - dt.timedelta(days=N)).isoformat()]
        model = load_checkpoint(labelled.root / head.checkpoint, head.sha256)
        expected = score_day(model, features_for_day(labelled, day), head.learner)
        np.testing.assert_array_equal(mornings[day]["FRAUD_SCORE"].to_numpy(), expected)
        assert mornings[day]["CUSTOMER_ID"].str.startswith("card-").all()


def test_when_the_last_chargebacks_come_the_chain_is_the_labelled_runs(runs, capsys):
    root, labelled, arrived, days, _ = runs
    today = days[-1] + dt.timedelta(days=N)
    # the export's last day: no later row shows it is over, so the bank says it is
    assert main(["close", "--date", days[-1].isoformat(), "--storage", str(arrived.root)]) == 0
    assert main(["labels", "--source", str(root / "bank" / "chargebacks"), "--storage",
                 str(arrived.root), "--today", today.isoformat()]) == 0
    assert main(["train", "--storage", str(arrived.root), *LEARNER]) == 0
    assert [(e.date, e.sha256) for e in verify(arrived)] == [
        (e.date, e.sha256) for e in verify(labelled)]
    for day in days[1:]:
        ours, theirs = pd.read_parquet(arrived.scores(day)), pd.read_parquet(labelled.scores(day))
        np.testing.assert_array_equal(ours["FRAUD_SCORE"].to_numpy(),
                                      theirs["FRAUD_SCORE"].to_numpy())
        np.testing.assert_array_equal(ours["CARD_RANK"].to_numpy(),
                                      theirs["CARD_RANK"].to_numpy())
    assert {s["state"] for s in day_states(arrived)} == {"trained"}
    capsys.readouterr()
    assert main(["days", "--storage", str(arrived.root), "--json"]) == 0
    states = json.loads(capsys.readouterr().out)
    assert [s["labelled_by"] for s in states] == ["7-day rule"] * DAYS
    assert Lineage.load(arrived).head == Lineage.load(labelled).head
