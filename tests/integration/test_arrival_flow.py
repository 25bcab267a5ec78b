"""The daily pipeline on days that arrive without labels: score today, train when labelled.

A real Prefect server (`prefect_harness`) and a real redis-server (`redis_url`), small
simulated days. All days come through the landing area, two of them without their label
column; the labels come through the flow's `labels` landing area.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.arrivals import LABEL_COLUMNS, write_labels
from tests.integration.test_flows import artifacts_of, queue_of

pytestmark = pytest.mark.integration


def test_daily_pipeline_scores_arrivals_then_trains_them_when_labelled(
        prefect_harness: str, redis_url: str, tmp_path: Path) -> None:
    from flows.pipeline import daily_pipeline
    from trainer.arrival import scored_by
    from trainer.data.simulator import simulate, write_day
    from trainer.share.layout import create_share
    from trainer.share.lineage import Lineage, verify

    share, _ = create_share(tmp_path / "share", "test")
    params = {"storage": str(share.root), "redis_url": redis_url,
              "retry_backoff_seconds": 0.05, "learner": "sgd",
              "labels": str(tmp_path / "labels")}
    frames = dict(simulate("2018-04-01", 5, customers=200, terminals=400, seed=1))
    days = sorted(frames)
    landing, labels = tmp_path / "landing", tmp_path / "labels"
    labels.mkdir()
    for day in days[:3]:  # GIVEN three days that arrive labelled, as the simulator writes
        write_day(frames[day], landing, day)
    for day in days[3:]:  # AND two days that arrive without labels
        frames[day].drop(columns=LABEL_COLUMNS).to_parquet(landing / f"{day}.parquet",
                                                           index=False)

    # WHEN the daily pipeline runs
    state = daily_pipeline(str(landing), **params, return_state=True)

    # THEN the labelled days are trained at once and the others scored by the new head
    assert state.is_completed(), state.message
    result = state.result()
    assert [(e["date"], e["kind"]) for e in result["ingested"]] == [
        (d.isoformat(), "training") for d in days[:3]] + [
        (d.isoformat(), "arrived") for d in days[3:]]
    assert [s["date"] for s in result["trained"]] == [d.isoformat() for d in days[:3]]
    assert [s["date"] for s in result["scored"]] == [d.isoformat() for d in days[3:]]
    assert result["awaiting"] == [d.isoformat() for d in days[3:]]
    head = Lineage.load(share).head_entry
    assert head.date == days[2] and scored_by(share, days[4])["sha256"] == head.sha256
    artifacts = artifacts_of(state.state_details.flow_run_id)
    assert "today is 2018-04-05 (scored on arrival)" in artifacts["headline"].data
    alerts = json.loads(artifacts["alerts"].data)
    assert alerts[0]["rank"] == 1 and {a["date"] for a in alerts} == {"2018-04-05"}
    assert "scored on arrival by the model trained through 2018-04-03" in (
        artifacts["alerts"].description)

    # WHEN every label of 04-04 comes (a full file: complete at once), and the flow runs
    write_labels(labels / "chargebacks.csv", frames[days[3]])
    again = daily_pipeline(str(landing), **params, return_state=True)

    # THEN 04-04 is trained, 04-05 still waits and is scored again by the new head
    assert again.is_completed(), again.message
    second = again.result()
    assert [c["date"] for c in second["completed"]] == ["2018-04-04"]
    assert [s["date"] for s in second["trained"]] == ["2018-04-04"]
    assert [s["date"] for s in second["scored"]] == ["2018-04-05"]
    assert second["awaiting"] == ["2018-04-05"]
    chain = verify(share)
    assert [e.date for e in chain] == days[:4]
    assert scored_by(share, days[4])["sha256"] == chain[-1].sha256
    assert queue_of(redis_url).stats().pending == 0

    # WHEN a week later the rule completes 04-05 with no more labels (today passed in)
    third = daily_pipeline(str(landing), **params, today=(days[4] + dt.timedelta(days=7))
                           .isoformat(), return_state=True)
    assert third.is_completed(), third.message
    assert [s["date"] for s in third.result()["trained"]] == ["2018-04-05"]
    assert third.result()["scored"] == [] and third.result()["awaiting"] == []
