"""A testing dataset's features are computed once and read back by later steps.

The step reports each new model on the newest testing dataset; its rows' features depend
only on the testing file and the 37 training days before it, not on the model
(trainer/evaluation/testing_features.py).
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.shares import simulate_days
from trainer.backlog import train_all
from trainer.data.ingest import ingest_path
from trainer.evaluation import testing_features as cache
from trainer.features.cards import CARD_FEATURE_COLUMNS, CARD_HISTORY_DAYS
from trainer.features.from_history import features_of_rows
from trainer.features.store import history_before
from trainer.share.layout import Share


@pytest.fixture()
def share_with_testing(tmp_path) -> tuple[Share, pd.DataFrame]:
    """Five training days and the sixth ingested as the testing dataset."""
    days = simulate_days(tmp_path / "landing", 6, customers=150, terminals=300)
    testing = tmp_path / "testing"
    testing.mkdir()
    (tmp_path / "landing" / f"{days[-1]}.parquet").rename(testing / f"{days[-1]}.parquet")
    share = Share.at(tmp_path / "share")
    ingest_path(tmp_path / "landing", share)
    ingest_path(testing, share, testing=True)
    return share, pd.read_parquet(share.testing_dataset(days[-1].isoformat()))


def _fresh(share: Share, rows: pd.DataFrame, profiles: bool) -> pd.DataFrame:
    day = rows["TX_DATETIME"].min().date()
    return features_of_rows(history_before(share, day), rows, profiles=profiles)


@pytest.mark.parametrize("profiles", [False, True])
def test_the_second_read_comes_from_the_cache_and_equals_the_computation(
        share_with_testing, monkeypatch, profiles):
    share, rows = share_with_testing
    dataset = sorted(share.testing_dir.glob("*.parquet"))[-1]
    first = cache.testing_features(share, dataset, rows, profiles=profiles)
    pd.testing.assert_frame_equal(first, _fresh(share, rows, profiles))
    assert cache.cache_path(share, dataset, profiles).is_file()

    def no_history(*_args, **_kwargs):
        raise AssertionError("the history was read again")

    monkeypatch.setattr(cache, "history_before", no_history)
    again = cache.testing_features(share, dataset, rows, profiles=profiles)
    pd.testing.assert_frame_equal(again, first, check_dtype=False)


def test_a_changed_testing_file_is_computed_again(share_with_testing):
    share, rows = share_with_testing
    dataset = sorted(share.testing_dir.glob("*.parquet"))[-1]
    cache.testing_features(share, dataset, rows, profiles=False)
    fewer = rows.iloc[: len(rows) // 2]
    fewer.to_parquet(dataset, index=False)  # another file under the same name
    got = cache.testing_features(share, dataset, fewer, profiles=False)
    assert len(got) == len(fewer)
    pd.testing.assert_frame_equal(got, _fresh(share, fewer, False))


def test_a_history_day_ingested_again_with_other_rows_invalidates_the_cache(
        share_with_testing, tmp_path):
    share, rows = share_with_testing
    dataset = sorted(share.testing_dir.glob("*.parquet"))[-1]
    before = cache.testing_features(share, dataset, rows, profiles=False)
    # the last history day replaced by a day of another simulation (seed 1)
    other = simulate_days(tmp_path / "other", 5, customers=150, terminals=300, seed=1)
    ingest_path(tmp_path / "other" / f"{other[-1]}.parquet", share)
    after = cache.testing_features(share, dataset, rows, profiles=False)
    pd.testing.assert_frame_equal(after, _fresh(share, rows, False))
    assert not after.equals(before)


def test_every_step_reports_the_testing_metrics_it_reported_before_the_cache(
        share_with_testing, monkeypatch):
    share, rows = share_with_testing
    results = train_all(share, learner="sgd")
    tests = [r.metrics["test"] for r in results]
    assert all(t["transactions"] == len(rows) for t in tests)
    # the same figures from features computed afresh for each model
    from trainer.evaluation import scoring
    from trainer.share.checkpoints import load_checkpoint
    from trainer.share.lineage import Lineage

    for entry, reported in zip(Lineage.load(share).chain(), tests, strict=True):
        model = load_checkpoint(share.root / entry.checkpoint, entry.sha256)
        fresh = _fresh(share, rows, False)
        metrics = scoring.day_metrics(fresh, scoring.score_day(model, fresh, "sgd"))
        for key in ("auc_roc", "average_precision", "card_precision_at_100", "accuracy"):
            assert reported[key] == metrics[key], (entry.date, key)


def test_the_card_columns_are_cached_apart_and_read_back(share_with_testing, monkeypatch):
    # GIVEN the testing features of a profiles learner, cached
    share, rows = share_with_testing
    dataset = sorted(share.testing_dir.glob("*.parquet"))[-1]
    profiles = cache.testing_features(share, dataset, rows, profiles=True)
    # WHEN a card learner's are asked
    cards = cache.testing_features(share, dataset, rows, profiles=True, cards=True)
    # THEN they are the profiles' frame and the 3 card columns, in a file of their own
    pd.testing.assert_frame_equal(cards[profiles.columns], profiles, check_dtype=False)
    assert list(cards.columns[len(profiles.columns):]) == CARD_FEATURE_COLUMNS
    day = rows["TX_DATETIME"].min().date()
    pd.testing.assert_frame_equal(cards, features_of_rows(
        history_before(share, day, CARD_HISTORY_DAYS), rows, profiles=True, cards=True))
    assert cache.cache_path(share, dataset, True, cards=True).is_file()
    monkeypatch.setattr(cache, "history_before", lambda *_a, **_k: 1 / 0)
    again = cache.testing_features(share, dataset, rows, profiles=True, cards=True)
    pd.testing.assert_frame_equal(again, cards, check_dtype=False)
