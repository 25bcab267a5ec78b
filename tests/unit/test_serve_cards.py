"""`fraudpipe serve` scores a chain of the card learner: its answers are the arrival path's.

A bank export's chain of `lgbm_mlp_cards_bounded` (29 inputs, the last 3 the card inputs
of `trainer.features.cards`) is served in process under the replay clock, its day's
windows in a real Redis: the first served day one transaction at a time, the next day's
history prepared ahead in two parts (days N-50 .. N-2 and the day just served, its rows
flagged against the carried part), then the second day half one by one, half as a batch.
Once the days arrive as files and `fraudpipe score` scores them with the same checkpoint,
every answer's inputs are the arrival features of its row bit for bit (the card inputs
included: the same prepared implementation over the same rows), and its score the
arrival score to 1e-9 (as `tests/integration/test_serve_skew.py` allows).
"""

from __future__ import annotations

import datetime as dt

import orjson
import pandas as pd
import pytest
import redis
from serving import bank_share, transaction

from trainer.arrival import arrived_features, scored_by
from trainer.cli import main
from trainer.features.cards import CARD_FEATURE_COLUMNS, CARD_HISTORY_DAYS
from trainer.learners.registry import CARD_INPUTS
from trainer.serving.intraday import RedisIntraday
from trainer.serving.scorer import Scorer

LEARNER = "lgbm_mlp_cards_bounded"


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    return bank_share(tmp_path_factory.mktemp("serve-cards"), learner=LEARNER)


def test_a_card_chain_is_served_one_by_one_and_in_batches_as_arrival_scores_it(bank,
                                                                               redis_url):
    # GIVEN a service on the card chain's head, under the replay clock
    first, second = bank.served
    scorer = Scorer(bank.share, bank.replay_config(prepare_ahead_seconds=6 * 3600),
                    RedisIntraday(redis.Redis.from_url(redis_url), "test"))
    assert scorer.load()
    head = scorer.serving.head
    assert head.cards and head.inputs == CARD_INPUTS
    # its history is the cards' 50 days (the share holds 10 of them)
    assert scorer.serving.history.parts[0].days[0] == first - dt.timedelta(CARD_HISTORY_DAYS)
    # WHEN the first day is served one transaction at a time, and the background tick
    # prepares the next day's carried part before midnight
    answers: dict[str, dict] = {}
    for row in bank.day_rows(first).to_dict("records"):
        answers[row["tx_id"]] = scorer.score_one(orjson.dumps(transaction(row)), inputs=True)
    scorer.tick()
    assert scorer._carried is not None and scorer._carried[2].prepared.cards is not None
    # AND the next day: its first half one by one (the roll on its first), then a batch
    rows = bank.day_rows(second).to_dict("records")
    half = len(rows) // 2
    for row in rows[:half]:
        answers[row["tx_id"]] = scorer.score_one(orjson.dumps(transaction(row)), inputs=True)
    assert [len(part.days) for part in scorer.serving.history.parts] == [
        CARD_HISTORY_DAYS - 1, 1]
    assert scorer.serving.history.served_days == [first]
    body = b"".join(orjson.dumps(transaction(row)) + b"\n" for row in rows[half:])
    for line in scorer.score_batch(body, "application/x-ndjson", inputs=True):
        answer = orjson.loads(line)
        answers[answer["transaction_id"]] = answer
    # THEN once the days arrive and are scored offline with the same checkpoint ...
    for day in bank.served:
        bank.arrive(day)
    assert main(["score", "--storage", str(bank.share.root)]) == 0
    high = 0
    for day in bank.served:
        assert scored_by(bank.share, day)["sha256"] == head.sha256
        offline = pd.read_parquet(bank.share.scores(day)).set_index("TRANSACTION_ID")
        features = arrived_features(bank.share, day, profiles=True,
                                    cards=True).set_index("TRANSACTION_ID")
        assert sorted(offline.index) == sorted(features.index) == sorted(
            tx for tx, a in answers.items() if a["serving_day"] == day.isoformat())
        for tx, expected in offline["FRAUD_SCORE"].items():
            # ... each answer's inputs are the arrival features, bit for bit
            inputs = answers[tx]["inputs"]
            assert list(inputs) == CARD_INPUTS
            assert list(inputs.values()) == features.loc[tx, CARD_INPUTS].tolist(), tx
            assert abs(answers[tx]["score"] - expected) <= 1e-9
            high += inputs[CARD_FEATURE_COLUMNS[0]] > 0
    # (the card inputs are not trivial: some spans hold high rows)
    assert high > 0
