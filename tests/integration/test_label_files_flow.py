"""The daily pipeline with a conflicting label file and late chargebacks: nothing is lost.

A real Prefect server (`prefect_harness`) and a real redis-server (`redis_url`). Twelve
small simulated days arrive unlabelled; their chargebacks land beside a correction file
that flips one fraud of the third day.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.arrivals import LABEL_COLUMNS, write_labels
from tests.integration.test_flows import artifacts_of

pytestmark = pytest.mark.integration


def test_daily_pipeline_keeps_good_labels_blocks_the_conflict_and_applies_late_ones(
        prefect_harness: str, redis_url: str, tmp_path: Path) -> None:
    from flows.pipeline import daily_pipeline
    from trainer.data.simulator import simulate
    from trainer.share.layout import create_share
    from trainer.share.lineage import verify

    share, _ = create_share(tmp_path / "share", "test")
    frames = dict(simulate("2018-04-01", 12, customers=200, terminals=400, seed=1))
    days = sorted(frames)
    landing, labels = tmp_path / "landing", tmp_path / "labels"
    landing.mkdir()
    labels.mkdir()
    for day in days:
        frames[day].drop(columns=LABEL_COLUMNS).to_parquet(landing / f"{day}.parquet",
                                                           index=False)
        write_labels(labels / f"{day}.csv", frames[day], frauds_only=True)
    fraud = frames[days[2]][frames[days[2]]["TX_FRAUD"] == 1].head(1)
    write_labels(labels / "correction.csv", fraud.assign(TX_FRAUD=0))
    params = {"storage": str(share.root), "redis_url": redis_url, "labels": str(labels),
              "retry_backoff_seconds": 0.05, "learner": "sgd"}

    # WHEN the daily pipeline runs
    state = daily_pipeline(str(landing), **params, return_state=True)

    # THEN it ends Failed naming the conflict, after completing and training what it could
    assert state.is_failed()
    tx = str(fraud["TRANSACTION_ID"].iloc[0])
    assert "label conflict" in state.message and tx in state.message
    headline = artifacts_of(state.state_details.flow_run_id)["headline"].data
    assert "label conflict" in headline and "2018-04-03" in headline
    for day in (days[0], days[1], days[3], days[4]):
        data = pd.read_parquet(share.training_dataset(day))
        assert int(data["TX_FRAUD"].sum()) == int(frames[day]["TX_FRAUD"].sum()), day
    assert not share.training_dataset(days[2]).exists()
    assert [e.date for e in verify(share)] == days[:2]  # strict date order: 04-03 blocks

    # WHEN the correction is withdrawn (removed from the landing area, and from the share)
    (labels / "correction.csv").unlink()
    from trainer.cli import main

    assert main(["labels", "--withdraw", "correction.csv", "--storage", str(share.root)]) == 0
    # AND a late chargeback for a trained day comes; the flow applies late labels by policy
    genuine = frames[days[0]][frames[days[0]]["TX_FRAUD"] == 0].head(1)
    write_labels(labels / "late.csv", genuine.assign(TX_FRAUD=1))
    again = daily_pipeline(str(landing), **params, apply_late_labels=True,
                           return_state=True)

    # THEN the run completes, 04-03 trained with its frauds, the late label applied
    assert again.is_completed(), again.message
    data = pd.read_parquet(share.training_dataset(days[2]))
    assert int(data["TX_FRAUD"].sum()) == int(frames[days[2]]["TX_FRAUD"].sum())
    first = pd.read_parquet(share.training_dataset(days[0])).set_index("TRANSACTION_ID")
    assert first.loc[genuine["TRANSACTION_ID"].iloc[0], "TX_FRAUD"] == 1
    assert [e.date for e in verify(share)] == days[:5]
