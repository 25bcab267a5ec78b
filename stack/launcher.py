"""`make up` / `make status` / `make down`: a local stack that stays open.

`up` starts a supervisor in the background (`python -m stack serve`, its output in
RUN_DIR/stack.log) and returns once the stack is ready. The supervisor locks the run
directory (stack/rundir.py), starts redis-server, the Prefect server with its scheduler
and a process worker on fixed ports, saves the blocks pointing at that Redis and share
(whatever port an earlier throw-away `make run` left in them), deploys the `*/local`
deployments (the `*/gke` ones too with `--gke`), and then watches its services: if one
dies it stops the others and exits, so `status` never reports a half stack as up. With
`--demo SECONDS` it drops one more simulated day into the landing area and gives
`daily-pipeline/local` an extra schedule every SECONDS, so the schedule has work to do.
`down` sends the supervisor SIGTERM and waits for it to stop everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from stack.register import (
    DAILY_DEPLOYMENT,
    PROCESS_POOL,
    REPOSITORY,
    create_pools_and_blocks,
    deploy,
    point_landing_at,
    set_interval_schedule,
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

#: The documented default ports (Makefile: REDIS_PORT, PREFECT_PORT). Not Redis' 6379 nor
#: Prefect's 4200, which another server on the machine may already use.
REDIS_PORT = 6380
PREFECT_PORT = 4280
#: Simulated population of the demo days; `make run` continues the run directory's own.
SIMULATION = {"customers": 5_000, "terminals": 10_000, "seed": 0}


class _Stop(Exception):
    """SIGTERM or SIGINT reached the supervisor."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


#: Days after which a demo day's labels land (its label file in RUN_DIR/labels).
DEMO_LABELS_AFTER = 7


def prepare(run_dir: RunDirectory, api_url: str, redis_url: str, gke: bool = False,
            demo_seconds: float = 0.0) -> None:
    """Pools, blocks, deployments and their landing parameter on the server at `api_url`."""
    env = prefect_env(api_url, run_dir.prefect)
    os.environ.update(env)  # before Prefect is imported: it reads its settings then
    asyncio.run(create_pools_and_blocks(run_dir.share, redis_url, gke=gke))
    deploy(env, gke=gke)
    # The demo's days arrive without labels, each day's labels a week later.
    asyncio.run(point_landing_at(run_dir.landing,
                                 run_dir.root / "labels" if demo_seconds else None))
    asyncio.run(set_interval_schedule(DAILY_DEPLOYMENT, demo_seconds or None))


def serve(args: argparse.Namespace) -> int:
    """The supervisor: start the stack, keep it running until SIGTERM/SIGINT."""
    run_dir = RunDirectory(Path(args.run_dir).expanduser().resolve()).create()
    lock = RunDirectoryLock(run_dir)
    started: list = []
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        state = lock.acquire("up")
        redis = RedisService(run_dir.redis, port=args.redis_port)
        started.append(redis.start())
        print(f"redis-server: {redis.url}", flush=True)
        server = PrefectServer(run_dir.prefect, port=args.prefect_port, scheduler=True)
        started.append(server.start())
        print(f"Prefect server (scheduler on): {server.url}", flush=True)
        state.redis_url, state.api_url, state.ui_url = redis.url, server.api_url, server.url
        state.demo_seconds = args.demo
        state.save(run_dir)
        prepare(run_dir, server.api_url, redis.url, gke=args.gke, demo_seconds=args.demo)
        print("work pools, blocks and deployments registered", flush=True)
        # One flow run at a time: scheduled, demo and `make run` runs queue on one machine
        # instead of training the same share side by side.
        worker = ProcessWorker(PROCESS_POOL, server.env(), run_dir.prefect / "worker.log",
                               cwd=REPOSITORY, limit=1)
        started.append(worker.start())
        print(f"process worker on {PROCESS_POOL} started", flush=True)
        _wait_for_scheduled_runs(server.api_url)
        state.ready = True
        state.save(run_dir)
        next_day = time.monotonic() + args.demo
        while True:
            for service in started:
                service._check_alive()  # raises ServiceError naming the service and its log
            if args.demo and time.monotonic() >= next_day:
                from stack.embedded import simulate_new_days

                day = simulate_new_days(run_dir, 1, **SIMULATION,
                                        labels_after=DEMO_LABELS_AFTER)[0]
                print(f"demo: dropped {day} into {run_dir.landing}", flush=True)
                next_day = time.monotonic() + args.demo
            time.sleep(1.0)
    except StackBusyError as exc:
        print(exc, file=sys.stderr, flush=True)
        return 3
    except _Stop:
        print("stopping", flush=True)
        return 0
    except Exception as exc:  # noqa: BLE001 - the log and `make up` show one clear reason
        print(f"the stack stopped: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for service in reversed(started):
            service.stop()
        lock.release()


def _log_tail(path: Path, chars: int = 2500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def up(args: argparse.Namespace) -> int:
    """Start the supervisor in the background and wait until the stack is ready."""
    run_dir = RunDirectory(Path(args.run_dir).expanduser().resolve()).create()
    if running_stack(run_dir) is not None:
        print(busy_message(run_dir), file=sys.stderr)
        return 3
    for port, variable in ((args.redis_port, "REDIS_PORT"), (args.prefect_port, "PREFECT_PORT")):
        if _in_use(port):
            print(f"port {port} ({variable}) is already in use by another program: choose "
                  f"another, e.g. `make up {variable}=<free port>`", file=sys.stderr)
            return 1
    began = time.perf_counter()
    command = [sys.executable, "-m", "stack", "serve", "--run-dir", str(run_dir.root),
               "--redis-port", str(args.redis_port), "--prefect-port", str(args.prefect_port),
               "--demo", str(args.demo)] + (["--gke"] if args.gke else [])
    with open(run_dir.log, "ab") as log:
        supervisor = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=REPOSITORY,
                                      start_new_session=True)  # outlives this command
    print(f"starting the stack in {run_dir.root} (log {run_dir.log}) ...", flush=True)
    deadline = time.monotonic() + args.timeout
    while True:
        if supervisor.poll() is not None:
            print(f"the stack did not start (exit {supervisor.returncode}); {run_dir.log}:\n"
                  f"{_log_tail(run_dir.log)}", file=sys.stderr)
            return 1
        state = StackState.load(run_dir)
        if state is not None and state.pid == supervisor.pid and state.ready:
            break
        if time.monotonic() > deadline:
            os.kill(supervisor.pid, signal.SIGTERM)
            print(f"the stack was not ready in {args.timeout:.0f} s; stopping it. "
                  f"{run_dir.log}:\n{_log_tail(run_dir.log)}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    print(f"stack up in {time.perf_counter() - began:.1f} s (pid {supervisor.pid})")
    _print_state(run_dir, state)
    print(f"\n  make run RUN_DIR={run_dir.root}    triggers daily-pipeline/local on it\n"
          f"  make status / make down RUN_DIR={run_dir.root}")
    return 0


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _print_state(run_dir: RunDirectory, state: StackState) -> None:
    print(f"  Prefect UI:  {state.ui_url}")
    print(f"  API:         {state.api_url}   (export PREFECT_API_URL={state.api_url})")
    print(f"  Redis:       {state.redis_url}")
    print(f"  landing:     {run_dir.landing}")
    print(f"  share:       {run_dir.share}")
    print(f"  logs:        {run_dir.log}, {run_dir.prefect}/server.log, "
          f"{run_dir.prefect}/worker.log")
    if state.demo_seconds:
        print(f"  demo:        a new day every {state.demo_seconds:g} s, "
              f"{DAILY_DEPLOYMENT} every {state.demo_seconds:g} s")


def status(args: argparse.Namespace) -> int:
    """Print whether a stack runs on the run directory and whether its services answer."""
    run_dir = RunDirectory(Path(args.run_dir).expanduser().resolve())
    state = running_stack(run_dir)
    if state is None:
        print(f"no stack running in {run_dir.root} (start one with `make up`)")
        return 0
    if state.kind != "up":
        print(busy_message(run_dir))
        return 0
    print(f"stack {'up' if state.ready else 'starting'} in {run_dir.root} "
          f"(pid {state.pid}, since {state.started})")
    _print_state(run_dir, state)
    healthy = _answers(state)
    for name, ok in healthy.items():
        print(f"  {name:<13}{'answers' if ok else 'DOES NOT ANSWER'}")
    if healthy.get("Prefect API"):
        for line in _schedule_lines(state):
            print(f"  {line}")
    return 0 if all(healthy.values()) else 1


def _schedule_lines(state: StackState) -> list[str]:
    """The worker's status and the next runs of daily-pipeline/local, from the API."""
    import httpx

    api = state.api_url
    workers = httpx.post(f"{api}/work_pools/{PROCESS_POOL}/workers/filter", json={},
                         timeout=10).json()
    online = [w["name"] for w in workers if w.get("status") == "ONLINE"]
    lines = [f"{'worker':<13}{'online: ' + ', '.join(online) if online else 'NOT ONLINE'}"]
    upcoming = ", ".join(_scheduled_runs(api)) or "none"
    lines.append(f"{'next runs':<13}{DAILY_DEPLOYMENT}: {upcoming}")
    return lines


def _scheduled_runs(api: str, limit: int = 3) -> list[str]:
    """Expected start times of daily-pipeline/local's next scheduled runs, soonest first."""
    import httpx

    deployment = httpx.get(f"{api}/deployments/name/{DAILY_DEPLOYMENT}", timeout=10).json()
    runs = httpx.post(f"{api}/flow_runs/filter", timeout=10, json={
        "flow_runs": {"deployment_id": {"any_": [deployment["id"]]},
                      "state": {"type": {"any_": ["SCHEDULED"]}}},
        "sort": "EXPECTED_START_TIME_ASC", "limit": limit}).json()
    return [in_schedule_zone(run["expected_start_time"], deployment)
            for run in runs]


def in_schedule_zone(expected_start: str, deployment: dict) -> str:
    """An API start time (ISO, UTC) in the time zone of the deployment's first schedule.

    The team reads "06:00 Europe/Paris" in prefect.yaml; the API answers in UTC.
    """
    import datetime as dt
    from zoneinfo import ZoneInfo

    schedules = deployment.get("schedules") or [{}]
    zone = (schedules[0].get("schedule") or {}).get("timezone") or "UTC"
    when = dt.datetime.fromisoformat(expected_start.replace("Z", "+00:00"))
    return f"{when.astimezone(ZoneInfo(zone)).strftime('%Y-%m-%d %H:%M')} {zone}"


def _wait_for_scheduled_runs(api: str, timeout: float = 60.0) -> None:
    """Return once the scheduler has put daily-pipeline/local's next runs on the server.

    Registering the deployments, then pointing their landing parameter at the run
    directory, deletes the runs already scheduled (prefect/server/models/deployments.py,
    `update_deployment`); the server's `schedule_recent_deployments` puts them back within
    its loop (5 s by default, prefect/server/services/scheduler.py). Until then the UI and
    `make status` would show no next run, so `make up` reports ready only after it.
    """
    deadline = time.monotonic() + timeout
    while not _scheduled_runs(api, limit=1):
        if time.monotonic() > deadline:
            print(f"warning: no scheduled run of {DAILY_DEPLOYMENT} after {timeout:.0f} s; "
                  f"is its schedule paused? (`make status` shows the next runs)", flush=True)
            return
        time.sleep(0.5)


def _answers(state: StackState) -> dict[str, bool]:
    import httpx
    import redis

    answers = {}
    try:
        answers["redis"] = bool(redis.Redis.from_url(state.redis_url,
                                                     socket_connect_timeout=2).ping())
    except redis.RedisError:
        answers["redis"] = False
    try:
        answers["Prefect API"] = httpx.get(f"{state.api_url}/health", timeout=5).json() is True
    except (httpx.HTTPError, ValueError):
        answers["Prefect API"] = False
    return answers


def down(args: argparse.Namespace) -> int:
    """Stop the `make up` stack of the run directory and wait until it has stopped."""
    run_dir = RunDirectory(Path(args.run_dir).expanduser().resolve())
    state = running_stack(run_dir)
    if state is None:
        print(f"no stack running in {run_dir.root}")
        return 0
    if state.kind != "up" or state.pid <= 0:
        print(busy_message(run_dir), file=sys.stderr)
        return 3
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while running_stack(run_dir) is not None:
        if time.monotonic() > deadline:
            print(f"the stack (pid {state.pid}) has not stopped after {args.timeout:.0f} s; "
                  f"see {run_dir.log}", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print(f"stack in {run_dir.root} stopped")
    return 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """The `up`, `serve`, `status` and `down` commands of `python -m stack`."""
    for name, function, help_text in (
        ("up", up, "start the local stack in the background and wait until it is ready"),
        ("serve", serve, "run the local stack in the foreground (what `up` starts)"),
    ):
        command = subparsers.add_parser(name, help=help_text)
        command.add_argument("--run-dir", default=".fraudpipe",
                             help="where the stack keeps its data (default .fraudpipe)")
        command.add_argument("--redis-port", type=int, default=REDIS_PORT,
                             help=f"port of redis-server (default {REDIS_PORT})")
        command.add_argument("--prefect-port", type=int, default=PREFECT_PORT,
                             help=f"port of the Prefect server and UI (default {PREFECT_PORT})")
        command.add_argument("--demo", type=float, default=0.0, metavar="SECONDS",
                             help="every SECONDS drop a new simulated day into the landing "
                             "area and run daily-pipeline/local (default 0: off)")
        command.add_argument("--gke", action="store_true",
                             help="also create the fraudpipe-gke pool and deploy the */gke "
                             "deployments (they run only on a GKE cluster)")
        command.add_argument("--timeout", type=float, default=300.0,
                             help="seconds to wait for the stack (default 300)")
        command.set_defaults(function=function)
    for name, function, help_text in (
        ("status", status, "whether a stack runs on the run directory, and where"),
        ("down", down, "stop the stack `up` started"),
    ):
        command = subparsers.add_parser(name, help=help_text)
        command.add_argument("--run-dir", default=".fraudpipe",
                             help="the stack's run directory (default .fraudpipe)")
        command.add_argument("--timeout", type=float, default=60.0,
                             help="seconds to wait for the stack to stop (default 60)")
        command.set_defaults(function=function)
    command = subparsers.add_parser(
        "prepare", help="register pools, blocks and the */local deployments on a running "
        "Prefect server (what `up` does after starting it)")
    command.add_argument("--run-dir", default=".fraudpipe")
    command.add_argument("--prefect-api-url", required=True)
    command.add_argument("--redis-url", required=True)
    command.add_argument("--gke", action="store_true")
    command.set_defaults(function=_prepare_command)


def _prepare_command(args: argparse.Namespace) -> int:
    run_dir = RunDirectory(Path(args.run_dir).expanduser().resolve()).create()
    prepare(run_dir, args.prefect_api_url, args.redis_url, gke=args.gke)
    return 0
