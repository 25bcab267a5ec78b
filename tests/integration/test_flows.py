"""The Prefect flows against a real Prefect server, a real redis-server and simulated days.

Each test simulates a few small days (handbook simulator, 200 customers / 400 terminals)
into a landing directory, runs a flow in-process against the session's Prefect API
(`prefect_harness`) and a flushed Redis db (`redis_url`), and checks the share (lineage
verifies), the queue (drained, dead letters) and the artifacts read back through the
Prefect client.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from uuid import UUID

import pytest

pytestmark = pytest.mark.integration

START = dt.date(2018, 4, 1)


def simulate(landing: Path, days: int, start: dt.date = START) -> list[dt.date]:
    from trainer.data.simulator import SimulationConfig, simulate_config, write_day

    config = SimulationConfig(start=START, days=(start - START).days + days, customers=200,
                              terminals=400, seed=7)
    written = []
    for day, frame in simulate_config(config):
        if day >= start:
            write_day(frame, landing, day)
            written.append(day)
    return written


def queue_of(redis_url: str):
    from trainer.queue.settings import RedisSettings
    from trainer.queue.work_queue import WorkQueue

    return WorkQueue(RedisSettings.from_url(redis_url))


def artifacts_of(flow_run_id: UUID) -> dict[str, object]:
    """Artifacts of a flow run by what they hold: "headline", "alerts", "report", ....

    Keys are `fraudpipe-<flow>-<what>`; a link artifact's type is "markdown" on the
    server, so the type alone cannot tell the report from the plot link.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    # A failed run also has Prefect's own artifacts without a key: not ours.
    return {artifact.key.rsplit("-", 1)[-1]: artifact for artifact in found if artifact.key}


def task_runs_named(flow_run_id: UUID, name: str, wait_seconds: float = 30.0) -> list:
    """Task runs of a flow run by name, waiting for them to reach the API.

    Prefect 3 records task runs from events sent in the background, so right after the
    flow returns they may not be in the database yet (seen under load with xdist).
    """
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + wait_seconds
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(
                any_=[flow_run_id])))
        named = [run for run in runs if run.name == name]
        if named or time.monotonic() > deadline:
            return named
        time.sleep(0.5)


@pytest.fixture
def fast(redis_url: str, tmp_path: Path) -> dict:
    """Parameters every flow takes: the share (created, as `fraudpipe init` does), the queue,
    quick retries."""
    from trainer.share.layout import create_share

    create_share(tmp_path / "share", "test")
    return {"storage": str(tmp_path / "share"), "redis_url": redis_url,
            "retry_backoff_seconds": 0.05}


def test_daily_pipeline_trains_drains_publishes_and_is_idempotent(
        prefect_harness: str, fast: dict, tmp_path: Path) -> None:
    from flows.pipeline import daily_pipeline
    from trainer.share.layout import Share
    from trainer.share.lineage import Lineage, verify

    # GIVEN five simulated days in the landing area
    landing = tmp_path / "landing"
    days = simulate(landing, 5)

    # WHEN the daily pipeline runs
    state = daily_pipeline(str(landing), **fast, return_state=True)

    # THEN it completed, every day is on a verified chain and the queue is drained
    assert state.is_completed(), state.message
    result = state.result()
    assert [s["date"] for s in result["trained"]] == [d.isoformat() for d in days]
    share = Share.at(fast["storage"])
    assert [e.date for e in verify(share)] == days
    stats = queue_of(fast["redis_url"]).stats()
    assert (stats.pending, stats.leased, stats.dead, stats.done) == (0, [], 0, 5)
    # ... and the run's artifacts exist on the server
    artifacts = artifacts_of(state.state_details.flow_run_id)
    # (labelled days: each list's outcome is known at once, for every day after the first,
    # which had no model to rank it; no days table, since no day arrived without labels)
    assert set(artifacts) == {"headline", "alerts", "report", "metrics", "plot", "progress",
                              "outcomes"}
    outcomes = json.loads(artifacts["outcomes"].data)
    assert sorted(row["date"] for row in outcomes) == [d.isoformat() for d in days[1:]]
    assert all(0 <= row["confirmed_fraud"] <= row["checked"] for row in outcomes)
    assert {artifacts[k].type for k in artifacts} == {"markdown", "table", "progress"}
    assert "datasets trained: **5**" in artifacts["report"].data
    table = json.loads(artifacts["metrics"].data)
    assert [row["date"] for row in table] == [d.isoformat() for d in days]
    assert table[-1]["auc_roc_before_training"] is not None
    assert float(artifacts["progress"].data) == 100.0
    plot = Path(result["plot"])
    assert plot.parent == share.output_dir / "plots"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(plot) in artifacts["plot"].data
    assert "](data:image/png;base64," in artifacts["plot"].data
    assert f"today is {days[-1].isoformat()}" in artifacts["headline"].data
    alerts = json.loads(artifacts["alerts"].data)
    assert alerts[0]["rank"] == 1 and alerts[0]["date"] == days[-1].isoformat()

    # WHEN it runs again on the same landing area
    head = Lineage.load(share).head
    again = daily_pipeline(str(landing), **fast, return_state=True)

    # THEN nothing is ingested, queued or trained again and the head did not move
    assert again.is_completed(), again.message
    second = again.result()
    assert (second["ingested"], second["queued"], second["trained"]) == ([], [], [])
    assert Lineage.load(share).head == head
    # ... no new plot is written, and the run's headline says nothing was trained
    assert second["plot"] is None
    assert sorted((share.output_dir / "plots").glob("*.png")) == [plot]
    quiet = artifacts_of(again.state_details.flow_run_id)
    assert "alerts" not in quiet and "plot" not in quiet
    assert "No new files: nothing was trained in this run." in quiet["headline"].data
    assert queue_of(fast["redis_url"]).stats().done == 5


def test_daily_pipeline_on_a_path_that_is_not_a_share_refuses_and_starts_no_chain(
        prefect_harness: str, fast: dict, tmp_path: Path) -> None:
    from flows.pipeline import daily_pipeline

    # GIVEN five days in the landing area and a storage path with no share (a failed mount)
    landing = tmp_path / "landing"
    simulate(landing, 5)
    missing = tmp_path / "mnt" / "fileserver"
    # WHEN the daily pipeline runs on it
    state = daily_pipeline(str(landing), **{**fast, "storage": str(missing)},
                           return_state=True)
    # THEN it fails naming the path, writes nothing there and queues nothing
    assert state.is_failed()
    assert "does not exist" in state.message and str(missing) in state.message
    assert not missing.exists()
    assert queue_of(fast["redis_url"]).stats().pending == 0


def logs_of(flow_run_id: UUID, until: str, wait_seconds: float = 30.0) -> list[str]:
    """The flow run's log messages, waiting until one contains `until` (logs are sent to
    the API in the background, like task runs)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = time.monotonic() + wait_seconds
    while True:
        with get_client(sync_client=True) as client:
            messages = [log.message for log in client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))]
        if any(until in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


def test_a_missing_landing_area_fails_the_run_with_a_one_line_cause(
        prefect_harness: str, fast: dict, tmp_path: Path) -> None:
    from flows.pipeline import daily_pipeline

    # GIVEN a landing path nobody created (the README's my-landing before its mkdir)
    missing = tmp_path / "my-landing"
    # WHEN the daily pipeline runs on it
    state = daily_pipeline(str(missing), **fast, return_state=True)
    # THEN the run is Failed and its state message is the cause, on one line
    assert state.is_failed()
    assert state.message == (
        f"landing {str(missing)!r}: no such directory; expected a directory that the day "
        f"files land in (create it and put the files there, e.g. with `fraudpipe simulate "
        f"--out DIR`)")
    # AND the run's log says it once as an error line, with no traceback to dig through
    logs = logs_of(state.state_details.flow_run_id, until="no such directory")
    assert sum(m == state.message for m in logs) == 1, logs
    assert not any("Traceback" in m for m in logs), logs
    assert not missing.exists()


def test_bad_file_is_quarantined_and_the_rest_trained(
        prefect_harness: str, fast: dict, tmp_path: Path) -> None:
    from flows.pipeline import daily_pipeline
    from trainer.share.layout import Share
    from trainer.share.lineage import verify

    # GIVEN five days of which the third is not a Parquet file at all
    landing = tmp_path / "landing"
    days = simulate(landing, 5)
    bad = landing / f"{days[2].isoformat()}.parquet"
    bad.write_bytes(b"this is not parquet\n")

    # WHEN the pipeline runs
    state = daily_pipeline(str(landing), **fast, return_state=True)

    # THEN the run completes, the bad file is in quarantine with its reason, the other
    # four days are trained and the day after the hole records a one-day gap
    assert state.is_completed(), state.message
    share = Share.at(fast["storage"])
    [copy] = share.quarantine_dir.glob(f"*-{bad.name}")
    assert bad.name in copy.with_name(f"{copy.name}.reason.txt").read_text()
    assert bad.read_bytes() == copy.read_bytes(), "a quarantined file stays in landing too"
    chain = verify(share)
    assert [e.date for e in chain] == days[:2] + days[3:]
    assert chain[2].gap_days == 1
    report = artifacts_of(state.state_details.flow_run_id)["report"].data
    assert "## Quarantined files" in report and bad.name in report


def test_failing_step_is_dead_lettered_and_the_run_fails_naming_it(
        prefect_harness: str, fast: dict, tmp_path: Path) -> None:
    from flows.ingest import ingest_flow
    from flows.train import train_flow
    from trainer.share.layout import Share
    from trainer.share.lineage import verify

    # GIVEN five days ingested and queued, then day 3's dataset removed from the share
    # (it passed ingest; its step now fails with a permanent DatasetValidationError)
    landing = tmp_path / "landing"
    days = simulate(landing, 5)
    ingested = ingest_flow(str(landing), storage=fast["storage"], redis_url=fast["redis_url"])
    assert ingested["queued"] == [d.isoformat() for d in days]
    share = Share.at(fast["storage"])
    share.training_dataset(days[2]).unlink()

    # WHEN the train flow drains the queue
    state = train_flow(**fast, step_retries=2, return_state=True)

    # THEN the run is Failed with a message naming the day and the error ...
    assert state.is_failed()
    assert days[2].isoformat() in state.message
    assert "DatasetValidationError" in state.message
    # ... the day is dead-lettered after one attempt (a permanent error is not retried) ...
    dead = sorted(queue_of(fast["redis_url"]).dead())
    assert [(item, attempts) for item, _, attempts in dead] == [
        (d.isoformat(), 1) for d in days[2:]]
    assert "DatasetValidationError" in dead[0][1]
    assert len(task_runs_named(state.state_details.flow_run_id,
                               f"train-{days[2].isoformat()}")) == 1
    # ... and the later days stop too, naming the lost file: their 37-day history is
    # incomplete, and training them would silently change the model
    assert "IncompleteHistoryError" in dead[1][1]
    assert str(share.training_dataset(days[2])) in dead[1][1]
    assert [e.date for e in verify(share)] == days[:2]
    assert queue_of(fast["redis_url"]).stats().pending == 0


def test_transient_failures_are_retried_with_backoff_then_dead_lettered(
        prefect_harness: str, fast: dict, tmp_path: Path) -> None:
    from flows.ingest import ingest_flow
    from flows.train import train_flow
    from trainer.share.layout import Share
    from trainer.share.lineage import Lineage

    # GIVEN two days trained, one more queued, and the head checkpoint corrupted on the
    # share (a LineageError: not permanent, so Prefect retries the step)
    landing = tmp_path / "landing"
    days = simulate(landing, 2)
    ingest_flow(str(landing), storage=fast["storage"], redis_url=fast["redis_url"])
    assert train_flow(**fast)["trained"]
    share = Share.at(fast["storage"])
    head = Lineage.load(share).head_entry
    (share.root / head.checkpoint).write_bytes(b"corrupted")
    days += simulate(landing, 1, start=days[-1] + dt.timedelta(days=1))
    ingest_flow(str(landing), storage=fast["storage"], redis_url=fast["redis_url"])

    # WHEN the train flow runs with two retries
    state = train_flow(**fast, step_retries=2, return_state=True)

    # THEN the step ran three times, the day is dead-lettered and the run is Failed
    assert state.is_failed()
    assert days[2].isoformat() in state.message and "after 3 attempt(s)" in state.message
    runs = task_runs_named(state.state_details.flow_run_id, f"train-{days[2].isoformat()}")
    assert len(runs) == 1 and runs[0].run_count == 3
    assert [d[0] for d in queue_of(fast["redis_url"]).dead()] == [days[2].isoformat()]


def test_backfill_reuses_trained_days_and_trains_the_rest(
        prefect_harness: str, fast: dict, tmp_path: Path) -> None:
    from flows.backfill import backfill_flow
    from flows.ingest import ingest_flow
    from flows.train import train_flow
    from trainer.share.layout import Share
    from trainer.share.lineage import Lineage, verify

    # GIVEN six days ingested of which the first three are trained, the queue then lost
    landing = tmp_path / "landing"
    days = simulate(landing, 6)
    share = Share.at(fast["storage"])
    first = tmp_path / "first"
    first.mkdir()
    for day in days[:3]:
        shutil.copy(landing / f"{day.isoformat()}.parquet", first)
    ingest_flow(str(first), storage=fast["storage"], redis_url=fast["redis_url"])
    train_flow(**fast)
    trained_before = {e.date: e.sha256 for e in Lineage.load(share).chain()}
    ingest_flow(str(landing), storage=fast["storage"], redis_url=fast["redis_url"])
    queue_of(fast["redis_url"]).redis.flushdb()

    # WHEN a backfill covers the second to the fifth day
    result = backfill_flow(days[1].isoformat(), days[4].isoformat(), **fast)

    # THEN the trained days are reused as they were and only the 4th and 5th are trained
    assert [s["date"] for s in result["trained"]] == [days[3].isoformat(), days[4].isoformat()]
    chain = verify(share)
    assert [e.date for e in chain] == days[:5]
    assert {e.date: e.sha256 for e in chain[:3]} == trained_before
    assert queue_of(fast["redis_url"]).stats().pending == 0


def test_replay_keeps_the_superseded_branch_and_the_new_chain_verifies(
        prefect_harness: str, fast: dict, tmp_path: Path) -> None:
    from flows.pipeline import daily_pipeline
    from flows.replay import replay_flow
    from trainer.share.layout import Share
    from trainer.share.lineage import EntryStatus, Lineage, verify

    # GIVEN four trained days
    landing = tmp_path / "landing"
    days = simulate(landing, 4)
    daily_pipeline(str(landing), **fast)
    share = Share.at(fast["storage"])

    # WHEN replaying from the second day's checkpoint
    state = replay_flow(days[1].isoformat(), **fast, return_state=True)

    # THEN the third and fourth days are retrained on top of the second, the old
    # entries stay in the lineage marked superseded, and the new chain verifies
    assert state.is_completed(), state.message
    result = state.result()
    assert [s["date"] for s in result["trained"]] == [d.isoformat() for d in days[2:]]
    lineage = Lineage.load(share)
    superseded = [e.date.isoformat() for e in lineage.entries
                  if e.status == EntryStatus.SUPERSEDED]
    assert superseded == [d.isoformat() for d in days[2:]]
    assert [e.date for e in verify(share)] == days
    assert len(lineage.entries) == 6
    assert queue_of(fast["redis_url"]).stats().pending == 0
    assert any("superseded" in note for note in result["notes"])
