"""`fraudpipe serve`'s answers to bad input, duplicates and batches (the ASGI app in process).

Bad input gets a 4xx naming the field and what was expected, and leaves the day's
windows as they were: a transaction scored after the rejected ones gets the answer it
gets from a service that never saw them.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from serving import bank_share, transaction

from trainer.data.datasets import validate_dataset
from trainer.serving.app import create_app
from trainer.serving.intraday import MemoryIntraday
from trainer.serving.requests import IdKinds, fast_row, frame_row
from trainer.serving.scorer import Scorer, ServeConfig
from trainer.serving.share_mapping import serving_mapping


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    return bank_share(tmp_path_factory.mktemp("serve-requests"))


def client_of(bank, **options) -> TestClient:
    return TestClient(create_app(Scorer(bank.share, bank.replay_config(**options),
                                        MemoryIntraday())))


def post_json_lines(client: TestClient, lines: list[dict], **params: str):
    """POST `lines` to /v1/score/batch as a JSON-lines body; the reply."""
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    return client.post("/v1/score/batch", params=params, content=body,
                       headers={"content-type": "application/x-ndjson"})


@pytest.fixture
def rows(bank):
    return bank.day_rows(bank.served[0])


def test_the_mapping_is_the_one_the_share_was_ingested_with(bank):
    assert serving_mapping(bank.share).columns["card"] == "card_id"


@pytest.mark.parametrize(("change", "status", "field", "expected"), [
    (lambda t: t.pop("card_id"), 422, "card_id", "missing column(s) CUSTOMER_ID"),
    (lambda t: t.update(amount="12.5"), 422, "amount", "expected a number"),
    (lambda t: t.update(amount=-1.0), 422, "amount", "expected >= 0"),
    (lambda t: t.update(amount=True), 422, "amount", "expected a number"),
    (lambda t: t.update(card_id=["card-1"]), 422, "card_id", "expected an id"),
    (lambda t: t.update(timestamp="yesterday"), 422, "timestamp", "ISO-8601"),
    (lambda t: t.update(timestamp="2018-04-09T08:00:00Z"), 422, "timestamp",
     "expected a time on 2018-04-11"),
])
def test_bad_fields_get_a_4xx_naming_the_field(bank, rows, change, status, field, expected):
    # (under the replay clock a later day rolls the day: a later day's refusal is tested
    # with the wall clock below)
    body = transaction(rows.iloc[0])
    change(body)
    with client_of(bank) as client:
        reply = client.post("/v1/score", json=body)
        assert reply.status_code == status, reply.text
        assert reply.json()["field"] == field
        assert expected in reply.json()["error"]


def test_a_later_day_under_the_wall_clock_is_refused(bank, rows):
    body = {**transaction(rows.iloc[0]), "timestamp": "2018-04-12T08:00:00Z"}
    config = ServeConfig(mapping=serving_mapping(bank.share), clock="wall",
                         today=bank.served[0], reload_seconds=3600)
    with TestClient(create_app(Scorer(bank.share, config, MemoryIntraday()))) as client:
        reply = client.post("/v1/score", json=body)
        assert reply.status_code == 422
        assert reply.json()["field"] == "timestamp"
        assert "on 2018-04-12; expected a time on 2018-04-11" in reply.json()["error"]
        assert client.get("/readyz").status_code == 503  # the wall clock is not in 2018


@pytest.mark.parametrize("raw", [b'{"amount": NaN}', b'{"amount": Infinity}',
                                 b'{"amount": 1e999}'])
def test_nan_and_infinite_amounts_are_named(bank, rows, raw):
    body = transaction(rows.iloc[0])
    text = orjson.dumps({k: v for k, v in body.items() if k != "amount"})[:-1]
    with client_of(bank) as client:
        reply = client.post("/v1/score", content=text + b"," + raw[1:],
                            headers={"content-type": "application/json"})
        assert reply.status_code == 422, reply.text
        assert reply.json()["field"] == "amount"
        assert "not NaN or inf" in reply.json()["error"]


def test_oversized_and_unparsable_bodies(bank):
    with client_of(bank) as client:
        big = client.post("/v1/score", content=b"{" + b" " * 20_000 + b"}")
        assert big.status_code == 413
        assert "expected at most 16384" in big.json()["error"]
        assert client.post("/v1/score", content=b"{not json").status_code == 400
        assert client.post("/v1/score", content=b"[1, 2]").status_code == 400
        wrong = client.post("/v1/score/batch", content=b"x", headers={"content-type":
                                                                      "text/csv"})
        assert wrong.status_code == 415


def test_rejected_requests_leave_the_windows_untouched(bank, rows):
    first, second = (transaction(rows.iloc[i]) for i in (0, 1))
    same_card = rows[rows["card_id"] == rows.iloc[0]["card_id"]]
    later = transaction(same_card.iloc[1]) if len(same_card) > 1 else second
    with client_of(bank) as clean:
        clean.post("/v1/score", json=first)
        expected = clean.post("/v1/score", params={"inputs": "true"}, json=later).json()
    with client_of(bank) as client:
        assert client.post("/v1/score", json=first).status_code == 200
        rejected = [
            {**later, "amount": -3.0},
            {**later, "tx_id": "tx-new-1", "timestamp": "2018-04-11T00:00:00Z"} if
            later["timestamp"] > "2018-04-11T00:00:01Z" else {**later, "amount": "x"},
            {**later, "tx_id": "tx-new-2", "timestamp": "2018-04-10T12:00:00Z"},
            {k: v for k, v in later.items() if k != "merchant_id"},
        ]
        for body in rejected:
            assert client.post("/v1/score", json=body).status_code == 422, body
        got = client.post("/v1/score", params={"inputs": "true"}, json=later).json()
        metrics = client.get("/metrics").text
    assert got["inputs"] == expected["inputs"]
    assert got["score"] == expected["score"]
    assert 'fraudpipe_serve_transactions_total{outcome="scored"} 2.0' in metrics


def test_a_late_transaction_is_refused_and_lateness_allows_it(bank, rows):
    early, late = transaction(rows.iloc[0]), transaction(rows.iloc[-1])
    with client_of(bank) as client:
        assert client.post("/v1/score", json=late).status_code == 200
        reply = client.post("/v1/score", json=early)
        assert reply.status_code == 422
        assert "earlier than the latest accepted transaction" in reply.json()["error"]
        assert reply.json()["field"] == "timestamp"
    with client_of(bank, lateness_seconds=86_400) as client:
        assert client.post("/v1/score", json=late).status_code == 200
        assert client.post("/v1/score", json=early).status_code == 200


def test_a_repeated_transaction_id_gets_the_first_answer_and_counts_once(bank, rows):
    card = rows[rows["card_id"].duplicated(keep=False)]["card_id"].iloc[0]
    mine = rows[rows["card_id"] == card]
    first, then = transaction(mine.iloc[0]), transaction(mine.iloc[1])
    with client_of(bank) as client:
        one = client.post("/v1/score", json=first).json()
        again = client.post("/v1/score", json={**first, "amount": first["amount"] + 1}).json()
        after = client.post("/v1/score", params={"inputs": "true"}, json=then).json()
        metrics = client.get("/metrics").text
    assert (one["duplicate"], again["duplicate"]) == (False, True)
    assert again["score"] == one["score"] and again["checkpoint"] == one["checkpoint"]
    assert after["inputs"]["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] <= 2.0  # the repeat not counted
    assert 'fraudpipe_serve_transactions_total{outcome="duplicate"} 1.0' in metrics


def test_answers_name_the_checkpoint_and_give_booster_reasons(bank, rows):
    with client_of(bank) as client:
        answer = client.post("/v1/score", json=transaction(rows.iloc[0])).json()
    assert len(answer["checkpoint"]["sha256"]) == 64
    assert answer["checkpoint"]["day"] == "2018-04-03"
    assert all(reason["contribution"] > 0 for reason in answer["reasons"])
    assert answer["reasons"] == sorted(answer["reasons"], key=lambda r: -r["contribution"])


@pytest.mark.parametrize("kind", ["jsonl", "arrow", "parquet"])
def test_a_batch_answers_as_one_by_one_requests(bank, rows, kind):
    in_order = rows.iloc[:60]
    with client_of(bank) as client:
        single = {r["tx_id"]: client.post("/v1/score", json=transaction(r)).json()["score"]
                  for _, r in in_order.iterrows()}
    batch = in_order.sample(frac=1, random_state=0)  # answers follow the body's order
    frame = pd.DataFrame([transaction(r) for _, r in batch.iterrows()])
    if kind == "jsonl":
        body = b"".join(orjson.dumps(transaction(r)) + b"\n" for _, r in batch.iterrows())
        content_type = "application/x-ndjson"
    elif kind == "arrow":
        sink = io.BytesIO()
        table = pa.Table.from_pandas(frame, preserve_index=False)
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        body, content_type = sink.getvalue(), "application/vnd.apache.arrow.stream"
    else:
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
        body, content_type = sink.getvalue(), "application/vnd.apache.parquet"
    with client_of(bank) as client:
        reply = client.post("/v1/score/batch", content=body,
                            headers={"content-type": content_type})
        assert reply.status_code == 200, reply.text
        answers = [json.loads(line) for line in reply.text.splitlines()]
        repeat = client.post("/v1/score/batch", content=body,
                             headers={"content-type": content_type})
    assert [a["transaction_id"] for a in answers] == batch["tx_id"].tolist()
    assert max(abs(a["score"] - single[a["transaction_id"]]) for a in answers) <= 1e-9
    assert all(json.loads(line)["duplicate"] for line in repeat.text.splitlines())


def test_a_batch_with_a_bad_row_names_it_and_records_nothing(bank, rows):
    lines = [transaction(r) for _, r in rows.iloc[:5].iterrows()]
    lines[3]["amount"] = -2.5
    with client_of(bank) as client:
        reply = post_json_lines(client, lines)
        assert reply.status_code == 422
        assert reply.json()["field"] == "amount"
        assert lines[3]["tx_id"] in reply.json()["error"]
        ok = client.post("/v1/score", json=lines[0]).json()
    assert ok["duplicate"] is False


@pytest.mark.parametrize("stamp", ["2018-04-11T08:00:00Z", "2018-04-11T10:00:00+02:00",
                                   "2018-04-11 08:00:00", "2018-04-11T08:00:00.123456789Z"])
def test_the_direct_parse_equals_the_ingest_validation(bank, stamp):
    mapping = serving_mapping(bank.share)
    kinds = IdKinds({"TRANSACTION_ID": "text", "CUSTOMER_ID": "text", "TERMINAL_ID": "text"})
    document = {"tx_id": "tx-1", "timestamp": stamp, "card_id": "card-7",
                "merchant_id": "m-3", "amount": 12.3}
    raw = pd.DataFrame([document]).astype(object)
    expected = frame_row(validate_dataset(mapping.apply(raw, "x").frame, "x", None,
                                          timezone=mapping.timezone), 0)
    assert fast_row(document, mapping, kinds) == expected


class Clock:
    """A wall clock the test moves by hand (aware UTC datetimes)."""

    def __init__(self, when: dt.datetime):
        self.when = when

    def __call__(self) -> dt.datetime:
        return self.when


def test_the_wall_clock_rolls_the_day_at_midnight_without_refusing_anything(bank):
    # GIVEN a service on the wall clock, at 23:59:59 of the first served day (UTC share)
    first, second = bank.served
    clock = Clock(dt.datetime.combine(first, dt.time(23, 59, 59), dt.UTC))
    config = ServeConfig(mapping=serving_mapping(bank.share), reload_seconds=3600)
    scorer = Scorer(bank.share, config, MemoryIntraday(), now=clock)
    assert scorer.load()  # no background thread: the test calls its tick() itself
    today, tomorrow = bank.day_rows(first), bank.day_rows(second)
    with TestClient(create_app(scorer, start=False)) as client:
        assert client.get("/readyz").json()["serving_day"] == first.isoformat()
        for _, row in today.iterrows():
            assert client.post("/v1/score", json=transaction(row)).status_code == 200
        early = transaction(tomorrow.iloc[0])
        assert client.post("/v1/score", json=early).status_code == 422  # not yet tomorrow
        scorer.tick()  # what the background thread does every 0.2 s
        # the next day's carried history is prepared ahead, before midnight
        assert scorer._carried is not None and scorer._carried[0] == second
        # WHEN midnight passes
        clock.when = dt.datetime.combine(second, dt.time(0, 0, 1), dt.UTC)
        assert client.get("/readyz").status_code == 503  # the day changed, not rolled yet
        scorer.tick()
        # THEN the next day is served, its history holding the day just served
        ready = client.get("/readyz").json()
        assert ready["ready"] is True and ready["serving_day"] == second.isoformat()
        assert scorer.serving.history.parts[-1].served_days == [first]
        answer = client.post("/v1/score", params={"inputs": "true"}, json=early).json()
        metrics = client.get("/metrics").text
    card = tomorrow.iloc[0]["card_id"]
    seen = (today["card_id"] == card).sum()
    assert answer["serving_day"] == second.isoformat()
    assert answer["inputs"]["CUSTOMER_ID_NB_TX_7DAY_WINDOW"] >= seen + 1
    assert "fraudpipe_serve_day_rolls_total 1.0" in metrics


def test_without_a_trained_head_the_service_is_alive_but_not_ready(tmp_path):
    from trainer.share.layout import create_share

    share, _ = create_share(tmp_path / "share", "test")
    config = ServeConfig(mapping=serving_mapping(share), clock="replay",
                         today=dt.date(2018, 4, 1), reload_seconds=3600)
    with TestClient(create_app(Scorer(share, config, MemoryIntraday()))) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "no head checkpoint yet" in ready.json()["reason"]
        reply = client.post("/v1/score", json={"TRANSACTION_ID": 1})
        assert reply.status_code == 503
        assert "not ready" in reply.json()["error"]


def test_a_whole_day_as_one_batch_equals_its_rows_sent_one_by_one_bit_for_bit(bank):
    # GIVEN the second served day (its history includes the first, served online first)
    first, day = bank.served
    with client_of(bank) as one_by_one, client_of(bank) as batched:
        for client in (one_by_one, batched):
            for _, row in bank.day_rows(first).iterrows():
                assert client.post("/v1/score", json=transaction(row)).status_code == 200
        rows = bank.day_rows(day)
        # WHEN one service gets the day one transaction at a time, in time order, and the
        # other gets it as one batch (shuffled: answers follow the body's order)
        single = {r["tx_id"]: client_json(one_by_one.post(
            "/v1/score", params={"inputs": "true"}, json=transaction(r)))
            for _, r in rows.iterrows()}
        shuffled = rows.sample(frac=1, random_state=1)
        reply = post_json_lines(batched, [transaction(r) for _, r in shuffled.iterrows()],
                                inputs="true", reasons="3")
        assert reply.status_code == 200, reply.text
    # THEN every answer is the one-by-one answer: same inputs and score, bit for bit
    answers = [json.loads(line) for line in reply.text.splitlines()]
    assert [a["transaction_id"] for a in answers] == shuffled["tx_id"].tolist()
    assert len(answers) == len(rows) > 50
    for answer in answers:
        expected = single[answer["transaction_id"]]
        assert answer["inputs"] == expected["inputs"]
        assert answer["score"] == expected["score"]
        assert answer["reasons"] == expected["reasons"]
        assert answer["duplicate"] is False


def client_json(reply) -> dict:
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_batch_spanning_two_days_is_refused_and_records_nothing(bank):
    first, day = bank.served
    lines = [transaction(bank.day_rows(first).iloc[-1]), transaction(bank.day_rows(day).iloc[0])]
    with client_of(bank) as client:
        reply = post_json_lines(client, lines)
        assert reply.status_code == 422
        assert reply.json()["field"] == "timestamp"
        assert "expected the day of row 0" in reply.json()["error"]
        assert client.post("/v1/score", json=lines[0]).json()["duplicate"] is False


def test_query_parameters_and_routes_are_checked_and_named(bank, rows):
    body = transaction(rows.iloc[0])
    with client_of(bank) as client:
        none = client.post("/v1/score", params={"reasons": "0"}, json=body).json()
        bad = client.post("/v1/score", params={"reasons": "many"},
                          json=transaction(rows.iloc[1]))
        flag = client.post("/v1/score", params={"inputs": "perhaps"},
                           json=transaction(rows.iloc[1]))
        unknown = client.get("/v2/score")
        wrong_method = client.get("/v1/score")
        later = client.post("/v1/score", json=transaction(rows.iloc[1])).json()
    assert none["reasons"] == [] and none["duplicate"] is False
    assert (bad.status_code, bad.json()["field"]) == (422, "reasons")
    assert "expected an integer from 0 to 100" in bad.json()["error"]
    assert (flag.status_code, flag.json()["field"]) == (422, "inputs")
    assert unknown.status_code == 404 and "/v1/score" in unknown.json()["error"]
    assert wrong_method.status_code == 405
    # the refused requests recorded nothing: the next one is its transaction's first
    assert later["duplicate"] is False
