"""The scores file's text columns are built by Arrow, and are the same as pandas' own."""

from __future__ import annotations

import io

import pandas as pd

from trainer.evaluation.scoring import _strings


def _parquet(column: pd.Series) -> bytes:
    sink = io.BytesIO()
    pd.DataFrame({"REASONS": column}).to_parquet(sink, index=False)
    return sink.getvalue()


def test_reason_strings_equal_pandas_string_series_and_write_the_same_bytes():
    values = [None, "amount 5.2x the card's 30-day mean", None, "", "terminal: 20 % — été",
              None]
    ours, pandas = _strings(values), pd.Series(values, dtype="string")
    assert ours.dtype == pandas.dtype
    pd.testing.assert_series_equal(ours, pandas)
    assert ours.isna().tolist() == [True, False, True, False, False, True]
    assert _parquet(ours) == _parquet(pandas)
