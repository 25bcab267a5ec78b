"""Features: each definition on hand-made frames, and the fast code against pandas rolling.

Definitions: docs/facts.md#features-and-evaluation (Le Borgne et al., fraud-detection handbook,
chapter 3.4).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from trainer.errors import DatasetValidationError
from trainer.features.compute import (
    FEATURE_COLUMNS,
    FEATURES_VERSION,
    HISTORY_DAYS,
    OUTPUT_COLUMNS,
    compute_features,
    features_for_frame,
)
from trainer.features.store import (
    features_for_day,
    history_before,
    history_days,
    read_transactions,
    write_features_cache,
)
from trainer.share.layout import Share

DAY = dt.date(2018, 4, 10)  # a Tuesday


def load_history(share: Share, day: dt.date) -> pd.DataFrame:
    """Transactions of `day` and the days before it that its features read, from the share."""
    return pd.concat([read_transactions(share.training_dataset(d)) for d in history_days(day)
                      if share.training_dataset(d).is_file()], ignore_index=True)


def tx(rows: list[tuple]) -> pd.DataFrame:
    """Transactions from (id, 'YYYY-MM-DD HH:MM:SS', customer, terminal, amount, fraud)."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "TRANSACTION_ID",
            "TX_DATETIME",
            "CUSTOMER_ID",
            "TERMINAL_ID",
            "TX_AMOUNT",
            "TX_FRAUD",
        ],
    )
    frame["TX_DATETIME"] = pd.to_datetime(frame["TX_DATETIME"]).astype("datetime64[ns]")
    frame["TX_AMOUNT"] = frame["TX_AMOUNT"].astype("float64")
    return frame.astype(
        {
            "TRANSACTION_ID": "int64",
            "CUSTOMER_ID": "int64",
            "TERMINAL_ID": "int64",
            "TX_FRAUD": "int64",
        }
    )


def row_of(features: pd.DataFrame, transaction_id: int) -> pd.Series:
    return features.set_index("TRANSACTION_ID").loc[transaction_id]


# --- the slow, obviously correct reference: the handbook's groupby + rolling -------------


def reference_features(transactions: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    frame = transactions.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable")
    out = frame.copy()
    out["TX_DURING_WEEKEND"] = (frame["TX_DATETIME"].dt.weekday >= 5).astype(float)
    out["TX_DURING_NIGHT"] = (frame["TX_DATETIME"].dt.hour <= 6).astype(float)
    # only the entities with a row on `day` (the rows of the others are dropped at the end)
    on_day = frame["TX_DATETIME"].dt.date == day
    for _, group in frame.groupby("CUSTOMER_ID", sort=False):
        if not on_day[group.index].any():
            continue
        amounts = group.set_index("TX_DATETIME")["TX_AMOUNT"]
        for n in (1, 7, 30):
            rolled = amounts.rolling(f"{n}D")
            out.loc[group.index, f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = rolled.count().to_numpy()
            out.loc[group.index, f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = rolled.mean().to_numpy()
    for _, group in frame.groupby("TERMINAL_ID", sort=False):
        if not on_day[group.index].any():
            continue
        frauds = group.set_index("TX_DATETIME")["TX_FRAUD"].astype(float)
        delay_sum = frauds.rolling("7D").sum().to_numpy()
        delay_count = frauds.rolling("7D").count().to_numpy()
        for n in (1, 7, 30):
            count = frauds.rolling(f"{7 + n}D").count().to_numpy() - delay_count
            fraud_sum = frauds.rolling(f"{7 + n}D").sum().to_numpy() - delay_sum
            with np.errstate(invalid="ignore", divide="ignore"):
                risk = np.where(count > 0, fraud_sum / count, 0.0)
            out.loc[group.index, f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count
            out.loc[group.index, f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = risk
    out = out[out["TX_DATETIME"].dt.date == day]
    return out[OUTPUT_COLUMNS].sort_values("TRANSACTION_ID", ignore_index=True)


def random_transactions(
    seed: int, days: int, per_day: int, customers: int, terminals: int, *, tie_share: float = 0.0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = days * per_day
    start = pd.Timestamp(DAY - dt.timedelta(days=days - 1)).value
    offsets = rng.integers(0, days * 86_400, n) * 10**9
    # Put some rows exactly n days apart and some on equal instants: the edge cases.
    snap = rng.random(n) < tie_share
    offsets[snap] = (offsets[snap] // (6 * 3600 * 10**9)) * (6 * 3600 * 10**9)
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": rng.permutation(n).astype("int64"),
            "TX_DATETIME": pd.to_datetime(start + offsets).astype("datetime64[ns]"),
            "CUSTOMER_ID": rng.integers(0, customers, n).astype("int64"),
            "TERMINAL_ID": rng.integers(0, terminals, n).astype("int64"),
            "TX_AMOUNT": np.round(rng.uniform(0, 200, n), 2),
            "TX_FRAUD": (rng.random(n) < 0.1).astype("int64"),
        }
    )
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pandas_rolling_on_random_data_with_ties(seed):
    # GIVEN 40 days of random transactions, many on equal instants and on exact n-day edges
    transactions = random_transactions(
        seed, days=40, per_day=60, customers=15, terminals=10, tie_share=0.5
    )
    # WHEN
    fast = compute_features(transactions, DAY)
    slow = reference_features(transactions, DAY)
    # THEN
    assert list(fast.columns) == OUTPUT_COLUMNS
    assert len(fast) == len(slow) > 0
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-9, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 30))
def test_matches_pandas_rolling_long(seed):
    transactions = random_transactions(
        seed, days=45, per_day=300, customers=60, terminals=40, tie_share=0.3
    )
    for day in (DAY, DAY - dt.timedelta(days=3)):
        pd.testing.assert_frame_equal(
            compute_features(transactions, day),
            reference_features(transactions, day),
            check_exact=False,
            rtol=1e-9,
            atol=1e-9,
        )


def test_result_does_not_depend_on_input_row_order():
    transactions = random_transactions(
        5, days=10, per_day=50, customers=5, terminals=5, tie_share=0.6
    )
    shuffled = transactions.sample(frac=1.0, random_state=99)
    pd.testing.assert_frame_equal(
        compute_features(transactions, DAY), compute_features(shuffled, DAY)
    )


def test_feature_columns_are_the_handbooks_fifteen():
    assert len(FEATURE_COLUMNS) == 15
    assert FEATURE_COLUMNS[:4] == [
        "TX_AMOUNT",
        "TX_DURING_WEEKEND",
        "TX_DURING_NIGHT",
        "CUSTOMER_ID_NB_TX_1DAY_WINDOW",
    ]
    assert FEATURE_COLUMNS[-1] == "TERMINAL_ID_RISK_30DAY_WINDOW"
    assert HISTORY_DAYS == 37


def test_customer_window_left_edge_is_open_and_current_transaction_included():
    features = compute_features(
        tx(
            [
                (
                    1,
                    "2018-04-09 12:00:00",
                    7,
                    1,
                    10.0,
                    0,
                ),  # exactly 1 day before tx 3: outside 1-day window
                (2, "2018-04-09 12:00:01", 7, 1, 20.0, 0),  # 1 day - 1 s before: inside
                (3, "2018-04-10 12:00:00", 7, 1, 60.0, 0),
                (4, "2018-03-11 12:00:00", 7, 1, 1000.0, 0),  # exactly 30 days before: outside
                (5, "2018-03-11 12:00:01", 7, 1, 30.0, 0),  # inside the 30-day window
                (6, "2018-04-10 11:00:00", 8, 1, 5.0, 0),  # another customer: never counted for 7
            ]
        ),
        DAY,
    )
    assert list(features["TRANSACTION_ID"]) == [3, 6]
    third = row_of(features, 3)
    assert third["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 2
    assert third["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"] == pytest.approx(40.0)
    assert third["CUSTOMER_ID_NB_TX_7DAY_WINDOW"] == 3
    assert third["CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW"] == pytest.approx(30.0)
    assert third["CUSTOMER_ID_NB_TX_30DAY_WINDOW"] == 4
    assert third["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"] == pytest.approx(30.0)
    alone = row_of(features, 6)
    assert alone["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 1
    assert alone["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"] == 5.0


def test_equal_timestamps_are_ordered_by_transaction_id():
    # Pandas' rolling window ends at the current row: the smaller id sees only itself.
    features = compute_features(
        tx(
            [(11, "2018-04-10 09:00:00", 1, 1, 10.0, 0), (10, "2018-04-10 09:00:00", 1, 1, 30.0, 0)]
        ),
        DAY,
    )
    assert list(features["CUSTOMER_ID_NB_TX_1DAY_WINDOW"]) == [1.0, 2.0]
    assert list(features["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"]) == [30.0, 20.0]


def test_terminal_windows_are_delayed_by_seven_days():
    t = "2018-04-10 12:00:00"
    features = compute_features(
        tx(
            [
                (1, "2018-04-03 12:00:00", 1, 5, 1.0, 1),  # exactly t - 7 d: inside (right-closed)
                (2, "2018-04-03 12:00:01", 1, 5, 1.0, 1),  # within the delay: never counted
                (
                    3,
                    "2018-04-02 12:00:00",
                    1,
                    5,
                    1.0,
                    0,
                ),  # exactly t - 8 d: outside the 1-day window
                (4, "2018-04-02 12:00:01", 1, 5, 1.0, 0),  # inside the 1-day window
                (
                    5,
                    "2018-03-27 12:00:00",
                    1,
                    5,
                    1.0,
                    1,
                ),  # t - 14 d: edge of the 7-day window, outside
                (
                    6,
                    "2018-03-04 12:00:01",
                    1,
                    5,
                    1.0,
                    0,
                ),  # inside the 30-day window (t - 37 d + 1 s)
                (7, "2018-03-04 12:00:00", 1, 5, 1.0, 1),  # exactly t - 37 d: outside
                (8, "2018-04-09 12:00:00", 1, 5, 1.0, 1),  # the day before: within the delay
                (9, t, 2, 5, 1.0, 0),
                (10, "2018-04-10 13:00:00", 2, 6, 1.0, 0),  # a terminal with no history
            ]
        ),
        DAY,
    )
    row = row_of(features, 9)
    assert row["TERMINAL_ID_NB_TX_1DAY_WINDOW"] == 2  # ids 1, 4
    assert row["TERMINAL_ID_RISK_1DAY_WINDOW"] == pytest.approx(0.5)
    assert row["TERMINAL_ID_NB_TX_7DAY_WINDOW"] == 3  # ids 1, 3, 4
    assert row["TERMINAL_ID_RISK_7DAY_WINDOW"] == pytest.approx(1 / 3)
    assert row["TERMINAL_ID_NB_TX_30DAY_WINDOW"] == 5  # ids 1, 3, 4, 5, 6
    assert row["TERMINAL_ID_RISK_30DAY_WINDOW"] == pytest.approx(2 / 5)
    empty = row_of(features, 10)
    for n in (1, 7, 30):
        assert empty[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] == 0
        assert empty[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] == 0


def test_weekend_and_night_boundaries():
    features = compute_features(
        tx(
            [
                (1, "2018-04-14 00:00:00", 1, 1, 1.0, 0),  # Saturday midnight
                (2, "2018-04-13 23:59:59", 1, 1, 1.0, 0),  # Friday
                (3, "2018-04-15 23:59:59", 1, 1, 1.0, 0),  # Sunday
                (4, "2018-04-16 06:59:59", 1, 1, 1.0, 0),  # Monday, hour 6: night
                (5, "2018-04-16 07:00:00", 1, 1, 1.0, 0),  # hour 7: day
            ]
        ),
        DAY,
    )
    assert features.empty  # none of them on DAY
    everything = pd.concat(
        [
            compute_features(tx([(i, s, 1, 1, 1.0, 0)]), pd.Timestamp(s).date())
            for i, s in [
                (1, "2018-04-14 00:00:00"),
                (2, "2018-04-13 23:59:59"),
                (3, "2018-04-15 23:59:59"),
                (4, "2018-04-16 06:59:59"),
                (5, "2018-04-16 07:00:00"),
            ]
        ],
        ignore_index=True,
    )
    assert list(everything["TX_DURING_WEEKEND"]) == [1, 0, 1, 0, 0]
    assert list(everything["TX_DURING_NIGHT"]) == [1, 0, 0, 1, 0]


def test_output_dtypes_and_only_the_days_rows():
    transactions = random_transactions(3, days=5, per_day=40, customers=10, terminals=10)
    features = compute_features(transactions, DAY)
    assert (features["TX_DATETIME"].dt.date == DAY).all()
    assert features["TRANSACTION_ID"].is_monotonic_increasing
    assert all(features[name].dtype == np.float64 for name in FEATURE_COLUMNS)
    assert len(features) == (transactions["TX_DATETIME"].dt.date == DAY).sum()


def test_bad_input_names_the_problem():
    good = tx([(1, "2018-04-10 10:00:00", 1, 1, 1.0, 0)])
    with pytest.raises(DatasetValidationError, match="TX_FRAUD"):
        compute_features(good.drop(columns=["TX_FRAUD"]), DAY)
    with pytest.raises(DatasetValidationError, match="appears twice"):
        compute_features(pd.concat([good, good]), DAY)
    with pytest.raises(DatasetValidationError, match="TX_DATETIME"):
        compute_features(good.assign(TX_DATETIME=good["TX_DATETIME"].astype("int64")), DAY)


def test_features_for_frame_uses_history_and_drops_overlap():
    transactions = random_transactions(4, days=40, per_day=50, customers=12, terminals=8)
    on_day = transactions[transactions["TX_DATETIME"].dt.date == DAY]
    before = transactions[transactions["TX_DATETIME"].dt.date < DAY]
    expected = compute_features(transactions, DAY)
    pd.testing.assert_frame_equal(features_for_frame(before, on_day), expected)
    pd.testing.assert_frame_equal(features_for_frame(transactions, on_day), expected)
    alone = features_for_frame(before.iloc[0:0], on_day)
    assert (alone["TERMINAL_ID_NB_TX_30DAY_WINDOW"] >= 0).all() and len(alone) == len(on_day)


# --- the share ---------------------------------------------------------------------------


def write_days(share: Share, transactions: pd.DataFrame) -> None:
    share.training_dir.mkdir(parents=True, exist_ok=True)
    for day, rows in transactions.groupby(transactions["TX_DATETIME"].dt.date):
        rows.sort_values("TX_DATETIME").to_parquet(share.training_dataset(day), index=False)


def test_share_history_cache_and_invalidation(tmp_path):
    share = Share.at(tmp_path)
    transactions = random_transactions(6, days=45, per_day=40, customers=20, terminals=10)
    write_days(share, transactions)
    expected = compute_features(transactions, DAY)

    history = load_history(share, DAY)
    assert history["TX_DATETIME"].dt.date.min() == DAY - dt.timedelta(days=HISTORY_DAYS)
    pd.testing.assert_frame_equal(features_for_day(share, DAY, use_cache=False), expected)

    path = write_features_cache(share, DAY)
    first_bytes = path.read_bytes()
    assert write_features_cache(share, DAY).read_bytes() == first_bytes  # deterministic
    cached = features_for_day(share, DAY)
    pd.testing.assert_frame_equal(cached, expected)

    # A changed input day invalidates the cache: the result follows the new data.
    changed_day = DAY - dt.timedelta(days=2)
    rows = pd.read_parquet(share.training_dataset(changed_day))
    rows["TX_AMOUNT"] = rows["TX_AMOUNT"] * 2
    rows.to_parquet(share.training_dataset(changed_day), index=False)
    changed = transactions.copy()
    on_changed = changed["TX_DATETIME"].dt.date == changed_day
    changed.loc[on_changed, "TX_AMOUNT"] *= 2
    pd.testing.assert_frame_equal(features_for_day(share, DAY), compute_features(changed, DAY))

    # A cache of another version is not used either: a poisoned file must be ignored.
    poisoned = expected.assign(TX_DURING_NIGHT=7.0)
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(poisoned, preserve_index=False)
    record = {"features_version": FEATURES_VERSION + "-old", "day": DAY.isoformat(), "inputs": {}}
    table = table.replace_schema_metadata({b"fraudpipe.features": json.dumps(record).encode()})
    pq.write_table(table, share.features(DAY))
    assert (features_for_day(share, DAY)["TX_DURING_NIGHT"] != 7.0).all()
    share.features(DAY).write_bytes(b"not parquet")
    assert len(features_for_day(share, DAY)) == len(expected)


def test_missing_day_names_the_file(tmp_path):
    share = Share.at(tmp_path)
    with pytest.raises(DatasetValidationError, match=r"2018-04-10\.parquet"):
        features_for_day(share, DAY)


def test_testing_day_features_from_history_before(tmp_path):
    # GIVEN training days before a testing day that is not itself a training day
    share = Share.at(tmp_path)
    transactions = random_transactions(8, days=40, per_day=30, customers=10, terminals=6)
    write_days(share, transactions[transactions["TX_DATETIME"].dt.date < DAY])
    testing_rows = transactions[transactions["TX_DATETIME"].dt.date == DAY]
    # WHEN
    features = features_for_frame(history_before(share, DAY), testing_rows)
    # THEN
    pd.testing.assert_frame_equal(features, compute_features(transactions, DAY))
    assert history_before(Share.at(tmp_path / "empty"), DAY).empty
    assert len(
        features_for_frame(history_before(Share.at(tmp_path / "empty"), DAY), testing_rows)
    ) == len(testing_rows)


# --- the fast paths give the same bits as the general one --------------------------------


def test_share_fast_path_equals_compute_features_bit_for_bit(tmp_path):
    # GIVEN canonical days on a share (sorted by time then id, as ingest writes them), with
    # ties, and more terminals than 2**16 so the entity order takes two radix passes
    share = Share.at(tmp_path)
    transactions = random_transactions(
        9, days=40, per_day=60, customers=12, terminals=70_000, tie_share=0.5
    )
    share.training_dir.mkdir(parents=True, exist_ok=True)
    for day, rows in transactions.groupby(transactions["TX_DATETIME"].dt.date):
        rows = rows.sort_values(["TX_DATETIME", "TRANSACTION_ID"])
        rows.to_parquet(share.training_dataset(day), index=False)
    # WHEN the share path (Arrow to numpy) and the pandas path compute the same day
    fast = features_for_day(share, DAY, use_cache=False)
    general = compute_features(load_history(share, DAY), DAY)
    # THEN every value and dtype is equal, and both equal the pandas rolling reference
    pd.testing.assert_frame_equal(fast, general, check_exact=True)
    assert fast.columns.equals(general.columns)
    pd.testing.assert_frame_equal(
        fast, reference_features(transactions, DAY), check_exact=False, rtol=1e-9, atol=1e-9
    )


def test_share_with_a_repeated_id_across_days_names_it(tmp_path):
    # GIVEN a transaction id that appears on two days (each file is valid on its own)
    share = Share.at(tmp_path)
    write_days(
        share,
        tx(
            [
                (5, "2018-04-09 10:00:00", 1, 1, 1.0, 0),
                (5, "2018-04-10 10:00:00", 1, 1, 2.0, 0),
                (6, "2018-04-10 11:00:00", 1, 1, 3.0, 0),
            ]
        ),
    )
    # WHEN / THEN the share path reports it like compute_features does
    with pytest.raises(DatasetValidationError, match="row 1: TRANSACTION_ID 5 appears twice"):
        features_for_day(share, DAY, use_cache=False)


def test_sparse_ids_and_missing_entity_ids_match_the_reference():
    # GIVEN ids far apart (the hash-table duplicate check) and a float CUSTOMER_ID column
    # with gaps (pandas codes them -1: one entity of their own)
    transactions = random_transactions(
        11, days=40, per_day=40, customers=8, terminals=6, tie_share=0.4
    )
    transactions["TRANSACTION_ID"] = transactions["TRANSACTION_ID"] * 10**12
    customers = transactions["CUSTOMER_ID"].astype("float64")
    customers[customers == 3] = np.nan
    transactions["CUSTOMER_ID"] = customers
    # WHEN
    fast = compute_features(transactions, DAY)
    # THEN the missing ids are grouped together, as pandas' groupby(dropna=False) would
    expected = reference_features(transactions.fillna({"CUSTOMER_ID": -1.0}), DAY)
    expected["CUSTOMER_ID"] = expected["CUSTOMER_ID"].replace(-1.0, np.nan)
    pd.testing.assert_frame_equal(fast, expected, check_exact=False, rtol=1e-9, atol=1e-9)
    with pytest.raises(DatasetValidationError, match="appears twice"):
        compute_features(pd.concat([transactions, transactions.iloc[[3]]]), DAY)
