"""The embedded default: the whole daily pipeline on one machine, through a real deployment.

`python -m stack run --days N --run-dir DIR` (what `make run` does) simulates N more days
into DIR/landing, triggers `prefect deployment run 'daily-pipeline/local'`, waits for the
flow run to finish and prints where the results are. When `make up` keeps a stack open on
DIR, the run goes through that stack. Otherwise it locks DIR, starts a private
redis-server and a local Prefect server (SQLite) there, creates the work pools, saves the
`fraudpipe-share` and `fraudpipe-queue` blocks, deploys the `*/local` deployments of
prefect.yaml, starts a process worker, and stops everything it started at the end, also
on Ctrl-C or an error. Everything lives in DIR, so a second run continues where the first
stopped: its new days only are simulated, ingested and trained. The exit status is 0 only
if the flow run Completed; 3 when another `make run` holds DIR.

Prefect is imported only after PREFECT_HOME and PREFECT_API_URL point at the run
directory's server, so `~/.prefect` and any other server are never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import fcntl
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from stack.register import (
    DAILY_DEPLOYMENT,
    create_pools_and_blocks,
    deploy,
    prefect_cli,
)
from stack.rundir import (
    RunDirectory,
    RunDirectoryLock,
    StackBusyError,
    StackState,
    busy_message,
    running_stack,
)
from stack.services import PrefectServer, ProcessWorker, RedisService, prefect_env

REPOSITORY = Path(__file__).resolve().parents[1]
PROCESS_POOL = "fraudpipe-process"
DEPLOYMENT = DAILY_DEPLOYMENT
FIRST_DAY = dt.date(2018, 4, 1)
FLOW_RUN_ID = re.compile(r"UUID:\s*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


class EmbeddedRunError(RuntimeError):
    """A phase of the embedded run failed; the message says which and why."""


@dataclass
class Timings:
    """Seconds spent per phase, printed as the run goes and summed at the end."""

    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block under `name` and print it when it ends."""
        began = time.perf_counter()
        print(f"-> {name} ...", flush=True)
        try:
            yield
        finally:
            self.phases[name] = round(time.perf_counter() - began, 1)
            print(f"   {name}: {self.phases[name]:.1f} s", flush=True)


def simulate_new_days(run_dir: RunDirectory, days: int, customers: int, terminals: int,
                      seed: int, labels_after: int = 0) -> list[dt.date]:
    """Write the `days` days that follow the last simulated one into the landing area.

    The simulator is deterministic and a shorter run is an exact prefix of a longer one,
    so simulating from the first day and writing only the new days continues the same
    population of customers and terminals. The parameters of the first run are kept in
    `simulation.json` and reused, so that a second run never mixes two populations.

    With `labels_after` = L > 0, the days arrive as a bank's do: without their labels, and
    each day's label file (`labels/<day>.csv`: TRANSACTION_ID, TX_FRAUD) lands once the
    simulation reaches L days after it, so the newest L days are not labelled yet.
    """
    # `make run` and the demo mode of `make up` may both add days: one at a time.
    with open(run_dir.root / "simulation.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _simulate_new_days_locked(run_dir, days, customers, terminals, seed,
                                         labels_after)


def _simulate_new_days_locked(run_dir: RunDirectory, days: int, customers: int,
                              terminals: int, seed: int, labels_after: int) -> list[dt.date]:
    from trainer.data.simulator import SimulationConfig, simulate_config, write_day

    state: dict[str, Any] = {"start": FIRST_DAY.isoformat(), "customers": customers,
                             "terminals": terminals, "seed": seed, "days": 0}
    if run_dir.simulation_state.exists():
        state = json.loads(run_dir.simulation_state.read_text())
        if (state["customers"], state["terminals"], state["seed"]) != (customers, terminals, seed):
            print(f"   continuing the population of {run_dir.simulation_state}: "
                  f"customers={state['customers']} terminals={state['terminals']} "
                  f"seed={state['seed']}", flush=True)
    done = int(state["days"])
    config = SimulationConfig(start=dt.date.fromisoformat(state["start"]), days=done + days,
                              customers=int(state["customers"]),
                              terminals=int(state["terminals"]), seed=int(state["seed"]))
    written = []
    last = config.start + dt.timedelta(days=done + days - 1)
    if labels_after > 0:
        # The label landing area exists from the first day: empty until labels are due,
        # which the daily pipeline reads as "no labels yet", not as a mistyped path.
        (run_dir.root / "labels").mkdir(parents=True, exist_ok=True)
    for index, (day, frame) in enumerate(simulate_config(config)):
        if index >= done:
            if labels_after > 0:
                # What a bank's export cannot know on the day: the label and the scenario.
                write_day(frame.drop(columns=["TX_FRAUD", "TX_FRAUD_SCENARIO"]),
                          run_dir.landing, day)
            else:
                write_day(frame, run_dir.landing, day)
            written.append(day)
        label_file = run_dir.root / "labels" / f"{day.isoformat()}.csv"
        if labels_after > 0 and day + dt.timedelta(days=labels_after) <= last \
                and not label_file.exists():
            frame[["TRANSACTION_ID", "TX_FRAUD"]].to_csv(label_file, index=False)
    state["days"] = done + days
    run_dir.simulation_state.write_text(json.dumps(state, indent=2) + "\n")
    return written


async def _wait_for_flow_run(flow_run_id: str, timeout: float):
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    last = None
    logs_shown = 0
    async with get_client() as client:
        while True:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
            state = flow_run.state
            if state is not None and state.name != last:
                last = state.name
                print(f"   flow run {flow_run.name}: {state.name}", flush=True)
            logs_shown += await _print_new_logs(client, flow_run_id, logs_shown)
            if state is not None and state.is_final():
                await asyncio.sleep(2.0)  # the worker ships its last log lines in batches
                await _print_new_logs(client, flow_run_id, logs_shown)
                return flow_run
            if time.monotonic() > deadline:
                raise EmbeddedRunError(
                    f"flow run {flow_run_id} did not finish in {timeout:.0f} s "
                    f"(last state {last})")
            await asyncio.sleep(1.0)


async def _print_new_logs(client, flow_run_id: str, already_shown: int) -> int:
    """Print the run's INFO+ log lines after the first `already_shown` (one per trained day).

    The worker runs the flow in another process, so its per-day progress reaches this
    terminal only through the server's log store. Returns how many lines were printed.
    """
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel
    from prefect.client.schemas.sorting import LogSort

    logs = await client.read_logs(
        log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(flow_run_id)]),
                             level=LogFilterLevel(ge_=logging.INFO)),
        offset=already_shown, sort=LogSort.TIMESTAMP_ASC)
    for entry in logs:
        print(f"   | {entry.message.splitlines()[0] if entry.message else ''}", flush=True)
    return len(logs)


def _print_results(run_dir: RunDirectory, ui_url: str, flow_run, *, ui_stays: bool) -> None:
    """Where the run's results are; the UI's links only when its server stays up."""
    from trainer.outcomes import outcome_path
    from trainer.share.layout import Share
    from trainer.share.lineage import Lineage

    share = Share.at(run_dir.share)
    lineage = Lineage.load(share)
    chain = lineage.chain()
    plots = sorted((share.output_dir / "plots").glob("*.png"))
    print("\nResults")
    print(f"  report:       {share.report_txt}  (and {share.report_json.name})")
    print(f"  checkpoints:  {share.output_dir}  ({len(chain)} in the chain"
          + (f", head {chain[-1].date}: {share.resolve(chain[-1].checkpoint)})" if chain else ")"))
    print(f"  lineage:      {share.lineage}")
    print(f"  plot:         {plots[-1] if plots else '(none written)'}")
    scores = sorted(share.scores_dir.glob("*.parquet")) if share.scores_dir.is_dir() else []
    if scores:
        today = scores[-1].stem
        print(f"  today's list: {today}: {scores[-1]}  (cards ranked, with reasons; "
              f"artifact fraudpipe-daily-pipeline-alerts; "
              f".venv/bin/fraudpipe alerts --storage {share.root})")
        outcomes = sorted(outcome_path(share, FIRST_DAY).parent.glob("*.json"))
        if outcomes:
            print(f"  last lists:   {len(outcomes)} outcome(s) in {outcomes[-1].parent}  "
                  f"(.venv/bin/fraudpipe alerts --outcomes --storage {share.root})")
    if ui_stays:
        print(f"  Prefect UI:   {ui_url}")
        print(f"  this run:     {ui_url}/runs/flow-run/{flow_run.id}")
    else:
        print("  Prefect UI:   stopped with this run's services; `make up` keeps a stack "
              "and its UI open (then `make run` uses it)")


def _wait_until_ready(run_dir: RunDirectory, timeout: float = 300.0) -> StackState:
    """The state of the `make up` stack on `run_dir` once its deployments are registered."""
    deadline = time.monotonic() + timeout
    while True:
        state = running_stack(run_dir)
        if state is None:
            raise EmbeddedRunError(f"the stack on {run_dir.root} stopped while starting; "
                                   f"its log: {run_dir.log}")
        if state.ready:
            return state
        if time.monotonic() > deadline:
            raise EmbeddedRunError(f"the stack on {run_dir.root} is not ready after "
                                   f"{timeout:.0f} s; its log: {run_dir.log}")
        time.sleep(0.5)


def run(args: argparse.Namespace) -> int:
    """Do the whole embedded run; returns the exit status.

    On a run directory where `make up` keeps a stack open, the run uses that stack's
    Redis, server and worker. Otherwise it locks the directory, starts its own services
    and stops them at the end; a second `make run` on the same directory is refused.
    """
    run_dir = RunDirectory(Path(args.run_dir).expanduser().resolve()).create()
    timings = Timings()
    started: list = []  # what this run started, stopped in reverse order
    lock = RunDirectoryLock(run_dir)
    began = time.perf_counter()
    try:
        stack = None if args.prefect_api_url else running_stack(run_dir)
        if stack is not None and stack.kind != "up":
            raise StackBusyError(busy_message(run_dir))
        if stack is not None:
            with timings.phase("use the running stack"):
                stack = _wait_until_ready(run_dir)
                redis_url, api_url, ui_url = stack.redis_url, stack.api_url, stack.ui_url
                print(f"   `make up` stack (pid {stack.pid}): Prefect UI {ui_url}, "
                      f"redis {redis_url}", flush=True)
        else:
            if not args.prefect_api_url:
                lock.acquire("run")
            with timings.phase("start redis-server"):
                if args.redis_url:
                    redis_url = args.redis_url
                else:
                    redis = RedisService(run_dir.redis).start()
                    started.append(redis)
                    redis_url = redis.url
                print(f"   redis: {redis_url}")
            with timings.phase("start Prefect server"):
                if args.prefect_api_url:
                    api_url = args.prefect_api_url.rstrip("/")
                    ui_url = api_url.removesuffix("/api")
                else:
                    # No scheduler: this server lives for one run, so the runs it would
                    # schedule could only go Late; `make up` keeps a server that fires them.
                    server = PrefectServer(run_dir.prefect, port=args.port,
                                           scheduler=False).start()
                    started.append(server)
                    api_url, ui_url = server.api_url, server.url
                print(f"   Prefect UI: {ui_url}  (API {api_url})", flush=True)
        env = prefect_env(api_url, run_dir.prefect)
        # Prefect reads its settings when first imported: point them at our server first.
        os.environ.update(env)
        if stack is None:
            with timings.phase("work pools and blocks"):
                asyncio.run(create_pools_and_blocks(run_dir.share, redis_url))
        with timings.phase(f"simulate {args.days} days"):
            new_days = simulate_new_days(run_dir, args.days, args.customers, args.terminals,
                                         args.seed, args.labels_after)
            print(f"   new days {new_days[0]} .. {new_days[-1]} in {run_dir.landing}")
        if stack is None:
            with timings.phase("prefect deploy"):
                deploy(env)
            with timings.phase("start worker"):
                worker = ProcessWorker(PROCESS_POOL, env, run_dir.prefect / "worker.log",
                                       cwd=REPOSITORY).start()
                started.append(worker)
        with timings.phase(f"run {DEPLOYMENT}"):
            output = prefect_cli(
                ["deployment", "run", DEPLOYMENT, "--param", f"landing={run_dir.landing}",
                 *(["--param", f"labels={run_dir.root / 'labels'}"] if args.labels_after
                   else [])],
                env, f"prefect deployment run '{DEPLOYMENT}'")
            match = FLOW_RUN_ID.search(output)
            if match is None:
                raise EmbeddedRunError(f"no flow run id in the output of deployment run:\n{output}")
            flow_run = asyncio.run(_wait_for_flow_run(match.group(1), args.timeout))
        _print_results(run_dir, ui_url, flow_run,
                       ui_stays=not any(isinstance(svc, PrefectServer) for svc in started))
        completed = flow_run.state is not None and flow_run.state.is_completed()
        if not completed:
            print(f"\nThe flow run ended {flow_run.state.name}: {flow_run.state.message}\n"
                  f"  worker log: {run_dir.prefect / 'worker.log'}", file=sys.stderr)
        return 0 if completed else 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what this run started", file=sys.stderr)
        return 130
    finally:
        for service in reversed(started):
            service.stop()
        lock.release()
        timings.phases["total"] = round(time.perf_counter() - began, 1)
        print("\nTimings (s): " + ", ".join(f"{k} {v}" for k, v in timings.phases.items()),
              flush=True)


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m stack run`."""
    cli = argparse.ArgumentParser(
        prog="python -m stack run",
        description="Run fraudpipe's daily pipeline on this machine through a Prefect "
        "deployment: private redis-server and Prefect server, N new simulated days.")
    cli.add_argument("--days", type=int, default=10, help="new days to simulate (default 10)")
    cli.add_argument("--run-dir", default=".fraudpipe",
                     help="where everything is kept between runs (default .fraudpipe)")
    cli.add_argument("--port", type=int, default=None,
                     help="port of the Prefect server and UI (default: a free one)")
    cli.add_argument("--customers", type=int, default=5_000, help="simulated customers")
    cli.add_argument("--terminals", type=int, default=10_000, help="simulated terminals")
    cli.add_argument("--seed", type=int, default=0, help="simulation seed")
    cli.add_argument("--labels-after", type=int, default=0, metavar="DAYS",
                     help="days arrive without labels, each day's labels DAYS days later "
                          "(make run: 7, so today has none yet); 0: days arrive labelled")
    cli.add_argument("--timeout", type=float, default=1800.0,
                     help="seconds to wait for the flow run (default 1800)")
    cli.add_argument("--prefect-api-url", default=None,
                     help="use this running Prefect server instead of starting one")
    cli.add_argument("--redis-url", default=None,
                     help="use this running Redis instead of starting one")
    return cli


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse the arguments and run; SIGTERM stops like Ctrl-C does."""
    args = parser().parse_args(argv)
    if args.days < 1:
        parser().error(f"--days must be at least 1, got {args.days}")
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        return run(args)
    except StackBusyError as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 - one clear line for the user, not a traceback
        print(f"\nembedded run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
