"""What the slowest 1% of `/v1/score` requests wait for: a traced service under an open loop.

    .venv/bin/python -m bench.serve_tail [--rate 300] [--seconds 30] [--out FILE]

Runs the service of `fraudpipe serve` (the same app, scorer and uvicorn settings) in a
child process with probes, on the cached default-size share of `python -m bench serve`,
drives it with the bench's open loop (latency from each request's due time), then
lines up every slow request with what the service was doing meanwhile:

- each garbage collection: start, duration, generation (``gc.callbacks``);
- event-loop stalls: a task sleeping 1 ms records every wake-up later than 2 ms;
- each request inside the service: when the app got it, when the scoring thread started
  and ended it, when its answer was sent;
- the background watcher's work: each head/lineage check and each read-ahead (tick).

Both processes read ``time.perf_counter`` (CLOCK_MONOTONIC on Linux, one clock for the
machine), so a client's request and the server's events are on one time line. The
figures that do not depend on the machine's load are the counts and durations of the
server's own events (collections, stalls, watcher work, scoring CPU); the latencies
still do.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

#: A request is "slow" from this latency (ms) in the summary's counts, besides the top 1%.
SLOW_MS = 20.0


def serve_traced(share: str, today: str, port: int, out: str) -> None:
    """Run the service with probes until SIGTERM; write the trace to `out`."""
    import datetime as dt

    import orjson
    import uvicorn

    from trainer.serving.app import create_app
    from trainer.serving.intraday import MemoryIntraday
    from trainer.serving.scorer import Scorer, ServeConfig
    from trainer.serving.share_mapping import serving_mapping
    from trainer.share.layout import Share

    opened = Share.at(Path(share))
    # as `fraudpipe serve` builds it (an older checkout has no freeze_gc)
    frozen = {"freeze_gc": True} if "freeze_gc" in ServeConfig.__dataclass_fields__ else {}
    config = ServeConfig(mapping=serving_mapping(opened), clock="replay",
                         today=dt.date.fromisoformat(today), lateness_seconds=86_400,
                         **frozen)
    scorer = Scorer(opened, config, MemoryIntraday())
    clock = time.perf_counter
    import trainer

    trace: dict[str, list] = {"gc": [], "stall": [], "request": [], "score": [],
                              "watch": [], "trainer": [str(Path(trainer.__file__).parent)]}

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            on_gc.started = clock()  # type: ignore[attr-defined]
        else:
            started = on_gc.started  # type: ignore[attr-defined]
            trace["gc"].append((started, clock() - started, info["generation"]))
    gc.callbacks.append(on_gc)

    def timed(name: str, function):
        def wrapper(*args, **kwargs):
            started, cpu = clock(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                trace[name].append((started, clock() - started, time.thread_time() - cpu,
                                    function.__name__))
        return wrapper
    scorer.score_one = timed("score", scorer.score_one)  # type: ignore[method-assign]
    scorer.check_reload = timed("watch", scorer.check_reload)  # type: ignore[method-assign]
    scorer.tick = timed("watch", scorer.tick)  # type: ignore[method-assign]
    app = create_app(scorer)

    async def probe() -> None:
        while True:
            before, cpu = clock(), time.thread_time()
            await asyncio.sleep(0.001)
            late = clock() - before - 0.001
            if late > 0.002:  # with the loop thread's CPU meanwhile: working, or not running
                trace["stall"].append((before + 0.001, late, time.thread_time() - cpu))

    async def traced(scope, receive, send):
        if scope["type"] == "lifespan":
            task = asyncio.get_running_loop().create_task(probe())
            await app(scope, receive, send)  # returns once the service has shut down
            task.cancel()
            Path(out).write_text(json.dumps(trace))
            return
        started = clock()
        seen: list = [None]

        async def received():
            message = await receive()
            if message.get("body"):
                try:
                    seen[0] = orjson.loads(message["body"]).get("TRANSACTION_ID")
                except (orjson.JSONDecodeError, AttributeError):
                    pass
            return message

        async def sent(message):
            await send(message)
            if message["type"] == "http.response.body":
                trace["request"].append((started, clock() - started, seen[0]))
        await app(scope, received, sent)

    uvicorn.run(traced, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def open_loop_records(url: str, items: list[bytes], rate: float, seconds: float,
                      senders: int = 16) -> list[tuple[float, float, int, float, int]]:
    """`bench.serve_load.open_loop` (the same client), keeping each request's (due time,
    latency, status, time it was sent, transaction id)."""
    import orjson

    from bench.serve_load import Feed, KeepAlive

    feed = Feed(items)
    due: queue.Queue = queue.Queue()
    start = time.perf_counter() + 0.2
    for i in range(int(rate * seconds)):
        due.put(start + i / rate)
    records: list[tuple[float, float, int, float, int]] = []

    def sender() -> None:
        client = KeepAlive(url)
        while True:
            try:
                when = due.get_nowait()
            except queue.Empty:
                client.close()
                return
            body = feed.take()
            if body is None:
                client.close()
                return
            pause = when - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            try:
                status = client.post("/v1/score", body)[0]
            except OSError:
                status = 0
                client.close()
            records.append((when, time.perf_counter() - when, status, sent,
                            orjson.loads(body)["TRANSACTION_ID"]))

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(records)


def _cpu_share(stalls: list) -> float | None:
    """Share of the stalls' time the loop's thread was on a CPU (the rest: not running,
    or waiting for the GIL)."""
    wall = sum(e[1] for e in stalls)
    return round(sum(e[2] for e in stalls) / wall, 3) if wall else None


def _long_stalls(inside: dict) -> dict:
    """Loop stalls over 15 ms: how many overlap a collection over 5 ms, the watcher's
    work, or neither (then: the loop working off queued requests, or not running)."""
    stalls = [e for e in inside["stall"] if e[1] > 0.015]
    gc_hit = sum(1 for e in stalls if any(g[1] > 0.005 for g in
                                          _overlaps(inside["gc"], e[0], e[0] + e[1])))
    watch_hit = sum(1 for e in stalls if any(w[1] > 0.001 for w in
                                             _overlaps(inside["watch"], e[0], e[0] + e[1])))
    neither = sum(1 for e in stalls
                  if not any(g[1] > 0.005 for g in _overlaps(inside["gc"], e[0], e[0] + e[1]))
                  and not any(w[1] > 0.001 for w in
                              _overlaps(inside["watch"], e[0], e[0] + e[1])))
    return {"count": len(stalls), "gc_over_5ms": gc_hit, "watch_over_1ms": watch_hit,
            "neither": neither}


def _overlaps(events: list, start: float, end: float) -> list:
    """Events (start, duration, ...) that overlap [start, end]."""
    return [e for e in events if e[0] < end and e[0] + e[1] > start]


def split(slow: list, requests: list) -> dict:
    """Where the slow requests' time went, mean ms: waiting for a client thread to send
    (``client_late``), sent to the app's receiving it (``before_app``: the socket, the
    server's queue, the HTTP parsing), in the app (``in_app``), after (``after_app``:
    the answer's way back to the client thread)."""
    by_id = {e[2]: e for e in requests if e[2] is not None}
    parts: dict[str, list[float]] = {"client_late": [], "before_app": [], "in_app": [],
                                     "after_app": []}
    for when, latency, _, sent, tx in slow:
        app = by_id.get(tx)
        if app is None:
            continue
        parts["client_late"].append(sent - when)
        parts["before_app"].append(app[0] - sent)
        parts["in_app"].append(app[1])
        parts["after_app"].append(when + latency - app[0] - app[1])
    return {"matched": len(parts["in_app"])} | {
        name: round(1000 * float(np.mean(values)), 2) if values else None
        for name, values in parts.items()}


def summary(records: list[tuple[float, float, int, float, int]], trace: dict) -> dict:
    """Latency percentiles, the server's events, and what the slowest 1% overlapped."""
    from bench.serve_load import percentiles

    begin, end = records[0][0], records[-1][0] + records[-1][1]
    inside = {name: [e for e in events if begin <= e[0] <= end]
              for name, events in trace.items() if name != "trainer"}
    latencies = np.array([r[1] for r in records])
    cut = float(np.percentile(latencies, 99))
    slow = [r for r in records if r[1] >= cut]
    causes = {"gc_gen2": 0, "gc_gen1": 0, "gc_gen0": 0, "loop_stall": 0, "watch": 0,
              "own_scoring_over_5ms": 0, "none_of_these": 0}
    for when, latency, *_ in slow:
        hit = False
        for gen in (2, 1, 0):
            if any(e[2] == gen for e in _overlaps(inside["gc"], when, when + latency)):
                causes[f"gc_gen{gen}"] += 1
                hit = True
        if _overlaps(inside["stall"], when, when + latency):
            causes["loop_stall"] += 1
            hit = True
        if _overlaps(inside["watch"], when, when + latency):
            causes["watch"] += 1
            hit = True
        if any(e[1] > 0.005 for e in _overlaps(inside["score"], when, when + latency)):
            causes["own_scoring_over_5ms"] += 1
            hit = True
        causes["none_of_these"] += not hit

    def durations(events: list, key=lambda e: True) -> dict:
        ms = np.array([e[1] for e in events if key(e)]) * 1000
        if not len(ms):
            return {"count": 0}
        return {"count": int(len(ms)), "total_ms": round(float(ms.sum()), 1),
                "p50_ms": round(float(np.percentile(ms, 50)), 2),
                "max_ms": round(float(ms.max()), 2), "over_5ms": int((ms > 5).sum())}

    scoring = inside["score"]
    served = inside["request"]
    return {
        "trainer": trace["trainer"][0], "requests": len(records),
        "errors": sum(1 for r in records if r[2] != 200),
        "client": percentiles(list(latencies)),
        "slow_from_ms": round(cut * 1000, 2),
        "over_20ms": int((latencies * 1000 > SLOW_MS).sum()),
        "server_request": percentiles([e[1] for e in served]),
        "scoring_wall": percentiles([e[1] for e in scoring]),
        "scoring_cpu_ms_mean": round(1000 * float(np.mean([e[2] for e in scoring])), 3)
        if scoring else None,
        "gc": {f"gen{gen}": durations(inside["gc"], lambda e, g=gen: e[2] == g)
               for gen in (0, 1, 2)},
        "loop_stalls_over_2ms": durations(inside["stall"]),
        "loop_stalls_over_10ms_cpu_share": _cpu_share([e for e in inside["stall"]
                                                       if e[1] > 0.010]),
        "loop_stalls_over_15ms_overlapping": _long_stalls(inside),
        "watch": {name: durations(inside["watch"], lambda e, n=name: e[3] == n)
                  for name in ("tick", "check_reload")},
        "slowest_1pct_overlapping": causes,
        "slowest_1pct_where_ms": split(slow, served),
        "all_where_ms": split(records, served),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the traced service and the open loop; print the summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", help="also write the summary and the raw trace here")
    parser.add_argument("--data-dir", default=os.environ.get("FRAUDPIPE_BENCH_DATA",
                                                             "/tmp/fraudpipe-bench"))
    parser.add_argument("--trainer-from", metavar="DIR",
                        help="serve another checkout's `trainer` package (to compare versions)")
    parser.add_argument("--serve", nargs=4, metavar=("SHARE", "DAY", "PORT", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        if args.trainer_from:
            sys.path.insert(0, args.trainer_from)
        share, day, port, out = args.serve
        serve_traced(share, day, int(port), out)
        return 0
    import tempfile

    import httpx

    from bench.serve_load import bodies, share_with_head, warm_up
    from bench.serve_phases import settled

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from redis_server import free_port

    share, all_days, served = share_with_head(Path(args.data_dir), days=44, customers=5000,
                                              terminals=10000, seed=0, served=7)
    items = bodies([all_days / f"{d}.parquet" for d in served[:2]])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    trace_file = Path(tempfile.mkdtemp(prefix="serve-tail-")) / "trace.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.serve_tail", "--serve", str(share),
         served[0].isoformat(), str(port), str(trace_file),
         *(["--trainer-from", args.trainer_from] if args.trainer_from else [])],
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the traced service exited {process.returncode}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        warm = items[:200]
        from bench.serve_load import Feed

        warm_up(url, Feed(warm), len(warm))
        settled(process.pid)
        from bench.serve_phases import cpu_seconds

        load, cpu = os.getloadavg()[0], cpu_seconds(process.pid)
        records = open_loop_records(url, items[200:], args.rate, args.seconds)
        load_after, cpu = os.getloadavg()[0], cpu_seconds(process.pid) - cpu
    finally:
        process.terminate()
        process.wait(timeout=60)
    trace = json.loads(trace_file.read_text())
    result = {"rate_per_s": args.rate, "seconds": args.seconds,
              "loadavg_before_after": [round(load, 2), round(load_after, 2)],
              "server_cpu_ms_per_request": round(1000 * cpu / len(records), 3),
              **summary(records, trace)}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": result, "records": records,
                                              "trace": trace}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
