"""The day roll prepares only the day just served; the next day's answers stay the arrival's.

The next serving day's history is prepared in two parts: the days carried from before
(known before midnight) ahead, in the service's background tick, and the day just served
at the roll. The preparation is counted (a wrapper around `prepare_history`): at the roll
it is given the served day's rows and nothing else, unless the share changed since the
carried part was prepared (labels filed), when the whole history is prepared again.
Nothing is prepared ahead before the last hours of the day (of the wall clock, or of the
latest transaction under the replay clock). The new day is served from the two parts,
and its answers carry the arrival path's features of their rows, bit for bit, once the
days arrive as files.
"""

from __future__ import annotations

import datetime as dt
import gc

import orjson
import pytest
from serving import bank_share, transaction

import trainer.serving.history as history_module
from trainer.arrival import arrived_features
from trainer.cli import main
from trainer.serving.intraday import MemoryIntraday
from trainer.serving.scorer import Scorer, ServeConfig
from trainer.serving.share_mapping import serving_mapping


class Clock:
    """A wall clock the test moves by hand (aware UTC datetimes)."""

    def __init__(self, when: dt.datetime):
        self.when = when

    def __call__(self) -> dt.datetime:
        return self.when


@pytest.fixture
def bank(tmp_path):
    return bank_share(tmp_path)


@pytest.fixture(autouse=True)
def collections(monkeypatch):
    """Full collections asked for (`gc.collect` calls), counted; the freeze undone after."""
    calls: list[int] = []
    collect = gc.collect

    def counting(*args):
        calls.append(1)
        return collect(*args)

    monkeypatch.setattr(gc, "collect", counting)
    yield calls
    gc.unfreeze()


@pytest.fixture
def prepared_rows(monkeypatch):
    """Rows given to each `prepare_history` call of the serving history, in call order."""
    calls: list[int] = []
    prepare = history_module.prepare_history

    def counting(columns, before_ns):
        calls.append(len(columns["TX_DATETIME"]))
        return prepare(columns, before_ns)

    monkeypatch.setattr(history_module, "prepare_history", counting)
    return calls


#: The next day's history is prepared in the day's last 6 hours (by then the simulated
#: day's last transactions have come; `fraudpipe serve`'s default is 15 minutes).
AHEAD_SECONDS = 6 * 3600


def scorer_on(bank, clock_kind: str,
              prepared: list[int]) -> tuple[Scorer, Clock, list[list[int]]]:
    """A scorer at 23:59:59 of the first served day; the rows each roll prepared."""
    first = bank.served[0]
    clock = Clock(dt.datetime.combine(first, dt.time(23, 59, 59), dt.UTC))
    config = (bank.replay_config(freeze_gc=True, prepare_ahead_seconds=AHEAD_SECONDS)
              if clock_kind == "replay"
              else ServeConfig(mapping=serving_mapping(bank.share), reload_seconds=3600,
                               prepare_ahead_seconds=AHEAD_SECONDS,
                               freeze_gc=True))  # as `fraudpipe serve` runs
    scorer = Scorer(bank.share, config, MemoryIntraday(), now=clock)
    assert scorer.load()  # no background thread: the test calls its tick() itself
    rolls: list[list[int]] = []
    roll_to = scorer.roll_to

    def counted_roll(day):
        start = len(prepared)
        try:
            return roll_to(day)
        finally:
            rolls.append(prepared[start:])

    scorer.roll_to = counted_roll  # the tick (wall clock) and a request (replay) call it
    return scorer, clock, rolls


def assert_arrival_inputs(bank, day: dt.date, answers: dict[str, dict]) -> None:
    """Each answer's inputs are `day`'s arrival features of its row, bit for bit."""
    for served in bank.served:
        bank.arrive(served)
    features = arrived_features(bank.share, day, profiles=True).set_index("TRANSACTION_ID")
    assert sorted(answers) == sorted(features.index)
    for tx, answer in answers.items():
        inputs = answer["inputs"]
        assert [inputs[name] for name in inputs] == features.loc[tx, list(inputs)].tolist()


@pytest.mark.parametrize("clock_kind", ["wall", "replay"])
def test_the_roll_prepares_only_the_day_just_served(bank, prepared_rows, collections,
                                                    clock_kind):
    # GIVEN a service that has served its first day, and its background tick run at noon
    # and before midnight
    first, second = bank.served
    scorer, clock, rolls = scorer_on(bank, clock_kind, prepared_rows)
    today, tomorrow = bank.day_rows(first), bank.day_rows(second)
    morning = today["timestamp"].str[11:13] < "12"
    assert 0 < morning.sum() < len(today)
    prepared_rows.clear()
    for _, row in today[morning].iterrows():
        scorer.score_one(orjson_body(transaction(row)))
    clock.when = dt.datetime.combine(first, dt.time(12), dt.UTC)
    scorer.tick()  # at noon (of the clock, or of the latest transaction): nothing yet
    assert prepared_rows == [] and scorer._carried is None
    for _, row in today[~morning].iterrows():
        scorer.score_one(orjson_body(transaction(row)))
    clock.when = dt.datetime.combine(first, dt.time(23, 59, 59), dt.UTC)
    scorer.tick()  # what the background thread does every 0.2 s, before midnight
    carried = sum(len(bank.day_rows(d)) for d in scorer.serving.history.file_days)
    assert prepared_rows == [carried]  # the days N-37 .. N-2: the share's files
    assert carried > 5 * len(today)
    # WHEN the day rolls (midnight, or the next day's first transaction)
    collections.clear()
    answers = {}
    if clock_kind == "wall":
        clock.when = dt.datetime.combine(second, dt.time(0, 0, 1), dt.UTC)
        scorer.tick()
    half = len(tomorrow) // 2
    for i, row in enumerate(tomorrow.to_dict("records")):
        if i == half:  # served from two parts: the carried days, then the day just served
            assert [part.days for part in scorer.serving.history.parts][1:] == [[first]]
            scorer.tick()  # the background pass mid-day: nothing to prepare
            assert len(scorer.serving.history.parts) == 2
        answers[row["tx_id"]] = scorer.score_one(orjson_body(transaction(row)), inputs=True)
    # THEN the roll prepared the served day's rows alone and ran no full collection (it
    # froze what it installed)
    assert rolls == [[len(today)]]
    assert collections == []
    assert all(o is not scorer.serving for o in gc.get_objects())
    assert scorer.serving.day == second
    assert scorer.serving.history.served_days == [first]
    # and the new day's inputs are the arrival path's, bit for bit
    assert_arrival_inputs(bank, second, answers)


def test_labels_filed_after_the_carried_part_was_prepared_are_read_at_the_roll(
        bank, prepared_rows, tmp_path):
    # GIVEN the next day's carried part prepared ahead
    first, second = bank.served
    scorer, clock, rolls = scorer_on(bank, "wall", prepared_rows)
    for _, row in bank.day_rows(first).iterrows():
        scorer.score_one(orjson_body(transaction(row)))
    scorer.tick()
    before = scorer._carried
    # WHEN chargebacks are filed before midnight (labels of the carried days change)
    labels = tmp_path / "late-labels"
    labels.mkdir()
    chargebacks = bank.daily.parent / "bank" / "chargebacks" / f"{first}.csv"
    (labels / chargebacks.name).write_bytes(chargebacks.read_bytes())
    assert main(["labels", "--source", str(labels), "--storage", str(bank.share.root)]) == 0
    clock.when = dt.datetime.combine(second, dt.time(0, 0, 1), dt.UTC)
    scorer.tick()  # rolls at once, before the reload check has seen the labels
    # THEN the roll prepared the carried days again, from the share as it now is
    assert before is not None and before[0] == second
    assert rolls == [[before[2].prepared.rows + len(bank.day_rows(first))]]
    answers = {row["tx_id"]: scorer.score_one(orjson_body(transaction(row)), inputs=True)
               for _, row in bank.day_rows(second).iterrows()}
    assert_arrival_inputs(bank, second, answers)


def orjson_body(document: dict) -> bytes:
    return orjson.dumps(document)
