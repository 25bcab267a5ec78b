"""End to end through a real deployment: prefect deploy --all, a worker, a deployment run.

The fixture (tests/prefect_server.py) starts a real Prefect server and redis-server and
runs the embedded default against them; these tests then check what a user would: the
flow run Completed, the queue is drained, the lineage verifies, and the artifacts exist
when read back through the Prefect REST API.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from prefect_server import (
    DAYS,
    TODAY,
    TRAINED,
    DeployedPipeline,
    deployed_pipeline,
    run_embedded,
)

from blocks.redis_queue import RedisWorkQueue
from stack.embedded import simulate_new_days
from stack.rundir import RunDirectory
from trainer.share.layout import Share
from trainer.share.lineage import verify

# One deployed pipeline (tests/prefect_server.py) for both modules: the same xdist worker.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("deployed_pipeline")]


@pytest.fixture(scope="session")
def pipeline(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> DeployedPipeline:
    return deployed_pipeline(request, tmp_path_factory)


def _daily_runs(pipeline: DeployedPipeline, auto_scheduled: bool = False) -> list[dict]:
    """The daily-pipeline runs that were triggered (or that the scheduler created)."""
    deployment = pipeline.api("GET", "/deployments/name/daily-pipeline/local")
    runs = pipeline.api("POST", "/flow_runs/filter",
                        json={"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})
    return [run for run in runs if run["auto_scheduled"] == auto_scheduled]


@pytest.mark.timeout(900)
def test_deployment_run_completes_and_leaves_a_verified_lineage(pipeline: DeployedPipeline) -> None:
    # GIVEN the embedded run against a real server (deploy --all, worker, deployment run)
    assert pipeline.returncode == 0, pipeline.output
    # THEN every local deployment of prefect.yaml is on the server, on its pool
    deployments = pipeline.api("POST", "/deployments/filter", json={})
    names = {(d["name"], d["work_pool_name"]) for d in deployments}
    for flow in ("daily-pipeline", "backfill", "replay", "ingest", "train"):
        flow_id = pipeline.api("GET", f"/flows/name/{flow}")["id"]
        assert any(d["flow_id"] == flow_id and d["work_pool_name"] == "fraudpipe-process"
                   for d in deployments), (flow, names)
    # AND none of the GKE ones, which cannot run on this machine (`make up GKE=1` adds them)
    assert names == {("local", "fraudpipe-process")}, names
    pools = {pool["name"] for pool in pipeline.api("POST", "/work_pools/filter", json={})}
    assert "fraudpipe-gke" not in pools
    # AND the daily-pipeline deployment ran once, through the worker, to Completed
    runs = _daily_runs(pipeline)
    assert len(runs) == 1
    assert runs[0]["state"]["type"] == "COMPLETED", runs[0]["state"]
    assert runs[0]["work_pool_name"] == "fraudpipe-process"
    assert runs[0]["parameters"]["landing"] == str(pipeline.run_dir / "landing")
    assert runs[0]["parameters"]["labels"] == str(pipeline.run_dir / "labels")
    # AND the server's scheduler (on, as `make up` runs it) queued the next 06:00 Paris runs
    upcoming = _daily_runs(pipeline, auto_scheduled=True)
    assert upcoming and all(run["state"]["type"] == "SCHEDULED" for run in upcoming), upcoming
    # AND the lineage verifies: one checkpoint per labelled day, in date order
    chain = verify(Share.at(pipeline.share))
    assert [entry.date for entry in chain] == [
        dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(TRAINED)]
    # AND every later day was scored on arrival by the head, today among them
    scored = sorted(p.stem for p in (pipeline.share / "output" / "scores").glob("*.parquet"))
    assert scored == [f"2018-04-{d:02d}" for d in range(2, DAYS + 1)]
    # AND the queue is drained: nothing pending, leased or dead
    stats = RedisWorkQueue.from_url(pipeline.redis.url).get_queue().stats()
    assert (stats.pending, stats.leased, stats.dead) == (0, [], 0), stats.to_json()
    # AND the output showed each day's step as the worker ran it (streamed from the run's logs)
    for entry in chain:
        assert f"| {entry.date.isoformat()} trained in " in pipeline.output, pipeline.output
    # AND the output names the report, today's list and the last lists' outcomes, and the
    # UI (its server stays up: the run used it, it did not start it)
    assert f"Prefect UI:   {pipeline.server.url}" in pipeline.output
    assert str(pipeline.share / "output" / "report.txt") in pipeline.output
    assert (f"today's list: {TODAY}: {pipeline.share / 'output' / 'scores' / TODAY}.parquet"
            in pipeline.output)
    assert f"last lists:   {TRAINED - 1} outcome(s)" in pipeline.output


def test_artifacts_of_the_flow_run_are_in_the_api(pipeline: DeployedPipeline) -> None:
    assert pipeline.returncode == 0, pipeline.output
    flow_run_id = _daily_runs(pipeline)[0]["id"]
    artifacts = pipeline.api("POST", "/artifacts/filter",
                             json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    by_key = {artifact["key"]: artifact for artifact in artifacts}
    assert {"fraudpipe-daily-pipeline-report", "fraudpipe-daily-pipeline-metrics",
            "fraudpipe-daily-pipeline-progress"} <= set(by_key), sorted(by_key)
    assert by_key["fraudpipe-daily-pipeline-report"]["type"] == "markdown"
    assert by_key["fraudpipe-daily-pipeline-metrics"]["type"] == "table"
    assert by_key["fraudpipe-daily-pipeline-progress"]["type"] == "progress"
    report = by_key["fraudpipe-daily-pipeline-report"]["data"]
    for day in range(1, TRAINED + 1):
        assert f"2018-04-{day:02d}" in report
    table = by_key["fraudpipe-daily-pipeline-metrics"]["data"]
    rows = json.loads(table) if isinstance(table, str) else table
    assert len(rows) == TRAINED
    assert by_key["fraudpipe-daily-pipeline-progress"]["data"] == 100.0
    # The plot is a PNG on the share, linked from an artifact (Prefect stores links as
    # markdown).
    plots = list((pipeline.share / "output" / "plots").glob("*.png"))
    assert len(plots) == 1 and plots[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots[0].name in by_key["fraudpipe-daily-pipeline-plot"]["data"]


def test_simulation_continues_after_the_last_day(tmp_path) -> None:
    # GIVEN a run directory where 3 days were simulated
    run_dir = RunDirectory(tmp_path)
    run_dir.landing.mkdir()
    first = simulate_new_days(run_dir, 3, customers=300, terminals=600, seed=1)
    # WHEN a second run asks for 2 more, with other population settings
    second = simulate_new_days(run_dir, 2, customers=999, terminals=999, seed=5)
    # THEN it writes only the 2 next days, from the first run's population
    assert first == [dt.date(2018, 4, 1), dt.date(2018, 4, 2), dt.date(2018, 4, 3)]
    assert second == [dt.date(2018, 4, 4), dt.date(2018, 4, 5)]
    assert sorted(p.name for p in run_dir.landing.iterdir()) == [
        f"2018-04-0{i}.parquet" for i in range(1, 6)]
    state = json.loads(run_dir.simulation_state.read_text())
    assert (state["customers"], state["seed"], state["days"]) == (300, 1, 5)


def test_embedded_refuses_zero_days(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "stack", "run", "--days", "0",
                             "--run-dir", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--days must be at least 1" in result.stderr


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_embedded_on_a_fresh_run_dir_twice_continues_and_stops_everything(tmp_path) -> None:
    # GIVEN nothing running: the embedded run starts and stops its own services
    first = run_embedded(tmp_path, 2)
    assert first.returncode == 0, first.stdout + first.stderr
    # WHEN it runs again on the same directory
    second = run_embedded(tmp_path, 2)
    assert second.returncode == 0, second.stdout + second.stderr
    # THEN the second run trained the 2 new days only, on top of the first chain
    chain = verify(Share.at(tmp_path / "share"))
    assert [e.date.isoformat() for e in chain] == [f"2018-04-0{i}" for i in range(1, 5)]
    assert "new days 2018-04-03 .. 2018-04-04" in second.stdout
    # AND nothing it started is left: the Prefect server it started (the address it printed
    # at the start) does not answer, and the results give no link to it
    [url] = [line.split()[2] for line in second.stdout.splitlines()
             if line.strip().startswith("Prefect UI: http")]
    assert "Prefect UI:   stopped with this run's services" in second.stdout
    assert f"{url}/runs/flow-run/" not in second.stdout
    import httpx

    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/api/health", timeout=2)
