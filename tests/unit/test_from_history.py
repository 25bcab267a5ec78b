"""Features from the raw history with the profile columns: the paths that are not a step.

The profiles come from their raw reference, `trainer.features.profiles`; what is tested
here is that each path gives them for the right rows, in the features frame's row order,
after the handbook's 15, and leaves the 15 as they were.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.shares import simulated_share
from trainer.data.simulator import simulate
from trainer.evaluation import scoring
from trainer.features.compute import OUTPUT_COLUMNS, compute_features
from trainer.features.from_history import (
    features_of_day,
    features_of_rows,
    features_of_transactions,
)
from trainer.features.profiles import EXTRA_FEATURE_COLUMNS, extra_features_of_day
from trainer.features.store import features_for_day, read_transactions
from trainer.learners.registry import PROFILE_INPUTS, learner_inputs, make_learner

DAYS = 12
D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(DAYS)]


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    frames = [frame for _, frame in simulate("2018-04-01", DAYS, customers=150,
                                             terminals=300, seed=3)]
    return pd.concat(frames, ignore_index=True)


def _on(transactions: pd.DataFrame, *days: dt.date) -> pd.DataFrame:
    return transactions[transactions["TX_DATETIME"].dt.date.isin(days)]


def _before(transactions: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    return transactions[transactions["TX_DATETIME"].dt.date < day]


def test_profiles_follow_the_15_and_leave_them_unchanged(transactions):
    day = D[-1]
    plain = features_of_transactions(transactions, day, profiles=False)
    profiled = features_of_transactions(transactions, day, profiles=True)
    pd.testing.assert_frame_equal(plain, compute_features(transactions, day))
    assert list(profiled.columns) == OUTPUT_COLUMNS + EXTRA_FEATURE_COLUMNS
    pd.testing.assert_frame_equal(profiled[OUTPUT_COLUMNS], plain)
    extra = extra_features_of_day(transactions, day)
    pd.testing.assert_frame_equal(profiled[["TRANSACTION_ID", *EXTRA_FEATURE_COLUMNS]],
                                  extra[["TRANSACTION_ID", *EXTRA_FEATURE_COLUMNS]])
    # the simulated customers have a history: the profiles are not their empty values
    assert (profiled["CUSTOMER_ID_AMOUNT_RATIO_30DAY_WINDOW"] != 1.0).mean() > 0.5


def test_rows_in_any_order_with_an_overlapping_history_get_the_days_profiles(transactions):
    # GIVEN a testing dataset of the last two days, shuffled, and the history before it
    rows = _on(transactions, D[-2], D[-1]).sample(frac=1.0, random_state=0)
    history = _before(transactions, D[-2])
    expected = pd.concat([features_of_transactions(transactions, day, profiles=True)
                          for day in D[-2:]], ignore_index=True)
    expected = expected.sort_values("TRANSACTION_ID", ignore_index=True)
    # WHEN its features are computed, THEN each row has its day's profiles
    pd.testing.assert_frame_equal(features_of_rows(history, rows, profiles=True), expected)
    # AND a history that holds the rows too does not count them twice
    pd.testing.assert_frame_equal(features_of_rows(transactions, rows, profiles=True),
                                  expected)
    pd.testing.assert_frame_equal(features_of_rows(history, rows, profiles=False),
                                  expected[OUTPUT_COLUMNS])


def test_a_share_day_gets_the_profiles_of_its_history(tmp_path):
    share = simulated_share(tmp_path, 10)
    day = share.training_dates()[-1]
    raw = pd.concat([read_transactions(share.training_dataset(d))
                     for d in share.training_dates()], ignore_index=True)
    pd.testing.assert_frame_equal(features_of_day(share, day, profiles=True),
                                  features_of_transactions(raw, day, profiles=True))
    pd.testing.assert_frame_equal(features_of_day(share, day, profiles=False),
                                  features_for_day(share, day))


def test_a_testing_dataset_is_scored_on_the_learners_inputs(tmp_path, scored_widths):
    # GIVEN a share with training days and a testing dataset after them
    share = simulated_share(tmp_path, 9)
    *training, testing_day = share.training_dates()
    share.testing_dir.mkdir(parents=True, exist_ok=True)
    testing = read_transactions(share.training_dataset(testing_day))
    share.training_dataset(testing_day).unlink()
    testing.to_parquet(share.testing_dir / f"{testing_day}.parquet", index=False)
    for name in ("lgbm_mlp", "lgbm_mlp_profiles"):
        # AND a model of each learner trained on its inputs
        model = make_learner(name)
        for day in training[-3:]:
            frame = features_of_day(share, day, profiles=name == "lgbm_mlp_profiles")
            model.partial_fit(scoring.model_inputs(frame, name), frame["TX_FRAUD"].to_numpy())
        # WHEN the testing dataset is evaluated
        result = scoring.evaluate_testing_dataset(share, model, name)
        # THEN it was scored on the learner's inputs, every testing row once
        assert scored_widths.pop() == len(learner_inputs(name))
        assert result["transactions"] == len(testing)
        assert result["dataset"] == f"datasets/testing/{testing_day}.parquet"


def test_model_inputs_take_the_learners_columns_in_its_order(transactions):
    frame = features_of_transactions(transactions, D[-1], profiles=True)
    reversed_frame = frame[frame.columns[::-1]]
    X = scoring.model_inputs(reversed_frame, "lgbm_mlp_profiles")
    np.testing.assert_array_equal(X, frame[PROFILE_INPUTS].to_numpy())
    assert scoring.model_inputs(frame, "lgbm_mlp").shape == (len(frame), 15)
