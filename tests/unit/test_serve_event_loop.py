"""What keeps `fraudpipe serve`'s slowest requests short: scoring on the event loop, a
lineage check that parses only a changed file, and the loaded objects out of the garbage
collector's scans.

With the day's windows in process, a transaction is scored on the event loop (no hand-off
to a thread, which made the loop and the thread wait for each other's GIL turn); what
would wait (a day roll, a repeat whose first answer is being computed) is refused there
with nothing recorded, and scored in the thread pool instead.
"""

from __future__ import annotations

import gc
import os
import threading

import orjson
import pytest
from fastapi.testclient import TestClient
from serving import bank_share, transaction

from trainer.serving.app import create_app
from trainer.serving.intraday import MemoryIntraday
from trainer.serving.requests import fast_row
from trainer.serving.scorer import Scorer, ServeConfig, WouldWait
from trainer.serving.share_mapping import serving_mapping
from trainer.share.lineage import Lineage


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    return bank_share(tmp_path_factory.mktemp("serve-event-loop"))


def scorer_of(bank, **options) -> Scorer:
    scorer = Scorer(bank.share, bank.replay_config(**options), MemoryIntraday())
    assert scorer.load(), scorer.not_ready
    return scorer


def body_of(row) -> bytes:
    return orjson.dumps(transaction(row))


def test_a_transaction_of_the_next_day_is_not_rolled_to_without_waiting(bank):
    first, second = bank.served
    scorer = scorer_of(bank)
    tomorrow = body_of(bank.day_rows(second).iloc[0])
    with pytest.raises(WouldWait):
        scorer.score_one(tomorrow, wait=False)
    assert scorer.serving.day == first and scorer.intraday.day_rows(second) == []
    answer = scorer.score_one(tomorrow)  # where waiting is allowed: the day rolls
    assert answer["serving_day"] == second.isoformat() and answer["duplicate"] is False
    assert len(scorer.intraday.day_rows(second)) == 1


def test_a_repeat_whose_first_answer_is_pending_is_refused_without_waiting(bank):
    scorer = scorer_of(bank)
    day = bank.served[0]
    body = body_of(bank.day_rows(day).iloc[0])
    # the first request has recorded the row and is still computing its answer
    row = fast_row(orjson.loads(body), scorer.config.mapping, scorer.serving.kinds)
    assert scorer.intraday.add(day, row, 0).status == "added"
    with pytest.raises(WouldWait):
        scorer.score_one(body, wait=False)
    duplicates = scorer.metrics.transactions.labels("duplicate")._value.get()
    assert duplicates == 0  # the refused attempt counted nothing
    scorer.intraday.set_answer(day, row[0], orjson.dumps(
        {"transaction_id": row[0], "score": 0.25}))
    assert scorer.score_one(body, wait=False) == {"transaction_id": row[0], "score": 0.25,
                                                  "duplicate": True}


def test_the_app_scores_on_the_loop_and_hands_a_roll_to_its_threads(bank):
    first, second = bank.served
    scorer = scorer_of(bank)
    threads: list[str] = []
    score_one = scorer.score_one

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return score_one(*args, **kwargs)
    scorer.score_one = recorded  # type: ignore[method-assign]
    with TestClient(create_app(scorer, start=False)) as client:
        today = client.post("/v1/score", json=transaction(bank.day_rows(first).iloc[0]))
        tomorrow = client.post("/v1/score", json=transaction(bank.day_rows(second).iloc[0]))
    assert today.status_code == tomorrow.status_code == 200
    assert tomorrow.json()["serving_day"] == second.isoformat()
    # today's on the loop's thread; tomorrow's tried there, then rolled in the pool
    assert not threads[0].startswith("serve") and not threads[1].startswith("serve")
    assert threads[2].startswith("serve") and len(threads) == 3


def test_a_new_head_written_at_the_same_size_is_seen(bank, tmp_path):
    import shutil

    share = bank.share
    copy = tmp_path / "share"
    shutil.copytree(share.root, copy)
    from trainer.share.layout import Share

    config = ServeConfig(mapping=serving_mapping(share), clock="replay",
                         today=bank.served[0], reload_seconds=3600)
    scorer = Scorer(Share.at(copy), config, MemoryIntraday())
    assert scorer.load()
    assert scorer.check_reload() == "unchanged"
    # WHEN the head moves back one checkpoint: the lineage's text keeps its length
    lineage = Lineage.load(scorer.share)
    previous = lineage.entries[-2].sha256
    text = scorer.share.lineage.read_text()
    moved = text.replace(f'"head": "{lineage.head}"', f'"head": "{previous}"')
    assert moved != text and len(moved) == len(text)
    staged = scorer.share.lineage.with_suffix(".staged")
    staged.write_text(moved)
    os.replace(staged, scorer.share.lineage)
    # THEN the next check loads it
    assert scorer.check_reload() == "loaded"
    assert scorer.serving.head.sha256 == previous


def test_the_service_freezes_what_it_loaded_out_of_the_collectors_scans(bank):
    before = gc.get_freeze_count()
    try:
        scorer_of(bank)
        assert gc.get_freeze_count() == before  # only when asked (the service asks)
        scorer = scorer_of(bank, freeze_gc=True)
        assert gc.get_freeze_count() > before
        serving = scorer.serving
        assert all(o is not serving for o in gc.get_objects())  # in no generation now
    finally:
        gc.unfreeze()
