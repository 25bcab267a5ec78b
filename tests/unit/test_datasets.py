"""Reading and validating one dataset file (trainer.data.datasets)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.fixtures import bad_datasets as fixtures
from trainer.data.datasets import load_training_day, read_dataset, validate_dataset
from trainer.data.schema import COLUMNS
from trainer.errors import DatasetValidationError
from trainer.share.layout import Share

DAY = dt.date(2018, 4, 3)


def canonical_dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {column: str(dtype) for column, dtype in frame.dtypes.items()}


EXPECTED_DTYPES = {column: str(dtype) for column, dtype in COLUMNS.items()}


@pytest.mark.parametrize(
    "representation",
    [
        "simulator",
        "sample",
        "object_datetime_ints",
        "datetime_s",
        "datetime_ms",
        "datetime_us",
        "nullable_ints",
    ],
)
def test_accepted_representations_give_the_same_canonical_frame(representation):
    base = fixtures.good_frame(DAY, seed=7)
    raw = {
        "simulator": base,
        "sample": fixtures.sample_like(base),
        "object_datetime_ints": fixtures.sample_like(base).astype({"TX_DATETIME": object}),
        "datetime_s": base.astype({"TX_DATETIME": "datetime64[s]"}),
        "datetime_ms": base.astype({"TX_DATETIME": "datetime64[ms]"}),
        "datetime_us": base.astype({"TX_DATETIME": "datetime64[us]"}),
        "nullable_ints": base.astype({"CUSTOMER_ID": "Int64", "TX_FRAUD": "Int64"}),
    }[representation]

    canonical = validate_dataset(raw, "2018-04-03.parquet", DAY)

    assert canonical_dtypes(canonical) == EXPECTED_DTYPES
    assert list(canonical.columns) == list(COLUMNS)
    reference = validate_dataset(base, "2018-04-03.parquet", DAY)
    pd.testing.assert_frame_equal(canonical, reference)


def test_canonical_rows_are_sorted_by_datetime_then_id_with_a_fresh_index():
    raw = fixtures.good_frame(DAY, rows=60, seed=3)
    # Two transactions at the same second: the id breaks the tie.
    raw.loc[5, "TX_DATETIME"] = raw.loc[6, "TX_DATETIME"]

    canonical = validate_dataset(raw, "2018-04-03.parquet", DAY)

    keys = list(zip(canonical["TX_DATETIME"], canonical["TRANSACTION_ID"], strict=True))
    assert keys == sorted(keys)
    assert list(canonical.index) == list(range(60))
    assert not raw["TX_DATETIME"].is_monotonic_increasing  # the fixture really was shuffled


def test_csv_with_iso_datetimes_round_trips(tmp_path):
    raw = fixtures.good_frame(DAY, seed=5)
    path = tmp_path / "2018-04-03.csv"
    raw.to_csv(path, index=False)

    canonical = validate_dataset(read_dataset(path), path.name, DAY)

    expected = validate_dataset(raw, path.name, DAY)
    pd.testing.assert_frame_equal(canonical, expected)


def test_extra_columns_are_dropped():
    raw = fixtures.good_frame(DAY).assign(TX_DURING_WEEKEND=1, **{"Unnamed: 0": 0})

    canonical = validate_dataset(raw, "2018-04-03.csv", DAY)

    assert list(canonical.columns) == list(COLUMNS)


def test_the_message_names_file_row_id_value_and_expectation():
    raw = fixtures.good_frame(DAY, rows=30, seed=1)
    raw.loc[17, "TRANSACTION_ID"] = 19088
    raw.loc[17, "TX_AMOUNT"] = -4.2

    with pytest.raises(DatasetValidationError) as caught:
        validate_dataset(raw, "2018-04-03.csv", DAY)

    assert (
        str(caught.value)
        == "2018-04-03.csv: row 17 (TRANSACTION_ID 19088): TX_AMOUNT is -4.2, expected >= 0"
    )


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("TX_AMOUNT", np.inf, "TX_AMOUNT is inf, expected a number (float64), not NaN or inf"),
        ("CUSTOMER_ID", -1, "CUSTOMER_ID is -1, expected >= 0"),
        ("TERMINAL_ID", -3, "TERMINAL_ID is -3, expected >= 0"),
        ("TRANSACTION_ID", -2, "TRANSACTION_ID is -2, expected >= 0"),
        ("TX_FRAUD_SCENARIO", 4, "TX_FRAUD_SCENARIO is 4, expected one of 0, 1, 2, 3"),
    ],
)
def test_out_of_range_values_are_named(column, value, fragment):
    raw = fixtures.good_frame(DAY, rows=20, seed=2)
    if column == "TX_FRAUD_SCENARIO":
        raw.loc[4, "TX_FRAUD"] = 1
    raw.loc[4, column] = value

    with pytest.raises(DatasetValidationError, match="row 4 ") as caught:
        validate_dataset(raw, "2018-04-03.parquet", DAY)

    assert fragment in str(caught.value)


def test_fraud_label_must_agree_with_scenario():
    raw = fixtures.good_frame(DAY, rows=20, seed=2)
    raw.loc[6, ["TX_FRAUD", "TX_FRAUD_SCENARIO"]] = [1, 0]

    with pytest.raises(
        DatasetValidationError, match="row 6 .*TX_FRAUD is 1 but TX_FRAUD_SCENARIO is 0"
    ):
        validate_dataset(raw, "2018-04-03.parquet", DAY)


def test_object_id_column_holding_text_is_refused_with_its_row():
    raw = fixtures.sample_like(fixtures.good_frame(DAY, rows=20, seed=2))
    raw.loc[8, "TERMINAL_ID"] = "T-17"

    with pytest.raises(
        DatasetValidationError, match=r"row 8 .*TERMINAL_ID is 'T-17' \(str\), expected an integer"
    ):
        validate_dataset(raw, "2018-04-03.pkl", DAY)


def test_missing_nullable_integer_is_refused():
    raw = fixtures.good_frame(DAY, rows=20, seed=2).astype({"TX_TIME_DAYS": "Int64"})
    raw.loc[11, "TX_TIME_DAYS"] = pd.NA

    with pytest.raises(DatasetValidationError, match="row 11 .*TX_TIME_DAYS is nan"):
        validate_dataset(raw, "2018-04-03.parquet", DAY)


def test_unparsable_datetime_text_is_named():
    raw = fixtures.good_frame(DAY, rows=20, seed=2).astype({"TX_DATETIME": str})
    raw.loc[3, "TX_DATETIME"] = "yesterday noon"

    with pytest.raises(DatasetValidationError, match="row 3 .*TX_DATETIME is 'yesterday noon'"):
        validate_dataset(raw, "2018-04-03.csv", DAY)


def test_without_an_expected_date_all_rows_must_share_one_day():
    one_day = fixtures.good_frame(DAY, rows=20)
    assert validate_dataset(one_day, "test_dataset.pkl", None)["TX_DATETIME"].dt.date.nunique() == 1

    mixed = one_day.copy()
    mixed.loc[12, "TX_DATETIME"] = pd.Timestamp("2018-04-04 10:00")
    with pytest.raises(
        DatasetValidationError, match="row 12 .*is on 2018-04-04, expected the day of row 0"
    ):
        validate_dataset(mixed, "test_dataset.pkl", None)


def test_pickle_is_read_only_when_allowed(tmp_path):
    path = tmp_path / "2018-04-03.pkl"
    fixtures.sample_like(fixtures.good_frame(DAY)).to_pickle(path)

    with pytest.raises(DatasetValidationError, match="pickle files can execute code"):
        read_dataset(path)
    assert len(read_dataset(path, allow_pickle=True)) == 40


def test_a_pickle_of_something_else_is_refused(tmp_path):
    path = tmp_path / "2018-04-03.pkl"
    pd.to_pickle([1, 2, 3], path)

    with pytest.raises(DatasetValidationError, match="holds a list, expected a pandas DataFrame"):
        read_dataset(path, allow_pickle=True)


def test_load_training_day_reads_back_and_names_a_missing_file(tmp_path):
    share = Share.at(tmp_path)
    with pytest.raises(DatasetValidationError, match="2018-04-03.parquet: no such dataset"):
        load_training_day(share, DAY)

    canonical = validate_dataset(fixtures.good_frame(DAY), "2018-04-03.parquet", DAY)
    share.training_dir.mkdir(parents=True)
    canonical.to_parquet(share.training_dataset(DAY), index=False)
    pd.testing.assert_frame_equal(load_training_day(share, DAY), canonical)

    share.training_dataset(DAY).write_bytes(b"PAR1 garbage")
    with pytest.raises(DatasetValidationError, match="2018-04-03.parquet: unreadable Parquet"):
        load_training_day(share, DAY)


def test_load_training_day_refuses_a_non_canonical_file(tmp_path):
    share = Share.at(tmp_path)
    share.training_dir.mkdir(parents=True)
    fixtures.sample_like(fixtures.good_frame(DAY)).to_parquet(
        share.training_dataset(DAY), index=False
    )

    with pytest.raises(DatasetValidationError, match="expected the canonical"):
        load_training_day(share, DAY)
