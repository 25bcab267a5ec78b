"""Online scores equal arrival scores: no skew between `fraudpipe serve` and `fraudpipe score`.

A bank export's days are served one transaction at a time, in the order they happen,
over real HTTP by two `fraudpipe serve` processes (uvicorn) that share the day's windows
through a real Redis, alternating between them, across a day roll, with the export's
text ids and column mapping. Then the same days arrive as files and `fraudpipe score`
scores them with the same checkpoint. Every answer's model inputs must be the arrival
path's features of that row bit for bit, and its score the arrival score to 1e-9.
"""

from __future__ import annotations

import datetime as dt

import httpx
import numpy as np
import pandas as pd
import pytest
from serving import Service, bank_share, transaction

from trainer.arrival import arrived_features, scored_by
from trainer.cli import main
from trainer.share.lineage import Lineage

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    return bank_share(tmp_path_factory.mktemp("serve-skew"))


def test_two_replicas_sharing_redis_answer_the_arrival_scores(bank, redis_url, tmp_path):
    # GIVEN two replicas on the bank share, sharing the day's windows through Redis
    head = Lineage.load(bank.share).head_entry
    args = ["--redis-url", redis_url, "--clock", "replay", "--today",
            bank.served[0].isoformat(), "--mapping", str(bank.mapping)]
    replicas = [Service(bank.share.root, *args, log=tmp_path / f"serve-{n}.log")
                for n in range(2)]
    try:
        for replica in replicas:
            assert replica.wait_ready()["checkpoint"]["sha256"] == head.sha256
        # WHEN every transaction of the served days is sent in time order, alternating
        answers: dict[str, dict] = {}
        with httpx.Client(timeout=30) as client:
            sent = 0
            for day in bank.served:
                rows = bank.day_rows(day)
                for _, row in rows.iterrows():
                    replica = replicas[sent % 2]
                    reply = client.post(f"{replica.url}/v1/score", params={"inputs": "true"},
                                        json=transaction(row))
                    assert reply.status_code == 200, reply.text
                    answers[row["tx_id"]] = reply.json()
                    sent += 1
                # a repeat on the other replica is answered with the first answer
                last = rows.iloc[-1]
                repeat = client.post(f"{replicas[sent % 2].url}/v1/score",
                                     json=transaction(last)).json()
                assert repeat["duplicate"] is True
                assert repeat["score"] == answers[last["tx_id"]]["score"]
            metrics = client.get(f"{replicas[0].url}/metrics").text
    finally:
        for replica in replicas:
            replica.stop()
    assert "fraudpipe_serve_day_rolls_total 1.0" in metrics
    # THEN the days arrive as files and are scored with the same checkpoint
    for day in bank.served:
        bank.arrive(day)
    assert main(["score", "--storage", str(bank.share.root)]) == 0
    exact = compared = 0
    for day in bank.served:
        assert scored_by(bank.share, day)["sha256"] == head.sha256
        offline = pd.read_parquet(bank.share.scores(day)).set_index("TRANSACTION_ID")
        features = arrived_features(bank.share, day, profiles=True).set_index("TRANSACTION_ID")
        assert len(offline) == len(bank.day_rows(day))
        for tx, expected in offline["FRAUD_SCORE"].items():
            answer = answers[tx]
            assert answer["checkpoint"]["sha256"] == head.sha256
            assert answer["serving_day"] == day.isoformat()
            inputs = answer["inputs"]
            # the inputs are the arrival path's, bit for bit (same code over the same rows)
            assert [inputs[name] for name in inputs] == features.loc[tx, list(inputs)].tolist()
            assert abs(answer["score"] - expected) <= 1e-9, (tx, answer["score"], expected)
            exact += answer["score"] == expected
            compared += 1
    print(f"{compared} online answers, {exact} equal to the arrival score bit for bit, "
          f"the rest within 1e-9")
    assert compared > 400


def test_a_restarted_replica_keeps_the_days_windows_from_redis(bank, redis_url, tmp_path):
    # GIVEN a replica that scored the first half of a day, then was stopped
    day = bank.served[0]
    rows = bank.day_rows(day)
    half = len(rows) // 2
    args = ["--redis-url", redis_url, "--clock", "replay", "--today", day.isoformat(),
            "--mapping", str(bank.mapping)]
    first = Service(bank.share.root, *args, log=tmp_path / "first.log")
    uninterrupted = Service(bank.share.root, "--clock", "replay", "--today", day.isoformat(),
                            "--mapping", str(bank.mapping), log=tmp_path / "memory.log")
    try:
        first.wait_ready()
        uninterrupted.wait_ready()
        with httpx.Client(timeout=30) as client:
            expected = [client.post(f"{uninterrupted.url}/v1/score",
                                    json=transaction(row)).json()["score"]
                        for _, row in rows.iterrows()]
            for _, row in rows.iloc[:half].iterrows():
                assert client.post(f"{first.url}/v1/score",
                                   json=transaction(row)).status_code == 200
            first.stop()
            # WHEN a new replica scores the rest of the day
            second = Service(bank.share.root, *args, log=tmp_path / "second.log")
            try:
                second.wait_ready()
                got = [client.post(f"{second.url}/v1/score",
                                   json=transaction(row)).json()["score"]
                       for _, row in rows.iloc[half:].iterrows()]
            finally:
                second.stop()
    finally:
        uninterrupted.stop()
    # THEN its answers are those of a replica that never stopped
    np.testing.assert_array_equal(got, expected[half:])
    assert dt.date.fromisoformat(day.isoformat()) == day
