"""Phases of `python -m bench serve` beyond the loops: what each costs the server, the
highest rate with p99 < 50 ms, a hot reload under load, a large day as one batch.

Each phase records the server process's CPU seconds (utime + stime from /proc) per request
and the load average before and after it: on a shared machine the latencies move with
other people's work, the CPU time per request much less.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: Open-loop p99 bound of the rate search, in ms.
P99_BOUND_MS = 50.0


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) the process `pid` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, phase: Callable[[], dict], count: str = "requests") -> dict:
    """`phase()`'s figures with the server's CPU per request and the load around it."""
    load, cpu = os.getloadavg(), cpu_seconds(pid)
    result = phase()
    used = cpu_seconds(pid) - cpu
    result["server_cpu_s"] = round(used, 2)
    if result.get(count):
        result["server_cpu_ms_per_request"] = round(1000 * used / result[count], 3)
    result["loadavg_before_after"] = [round(load[0], 2), round(os.getloadavg()[0], 2)]
    return result


def rate_search(url: str, feed, pid: int, rates: list[float], seconds: float,
                open_loop) -> dict:
    """Open loops at increasing rates until p99 passes `P99_BOUND_MS` or the day runs out."""
    steps = []
    for rate in rates:
        step = measured(pid, lambda rate=rate: open_loop(url, feed, rate, seconds))
        steps.append(step)
        print("rate search", step, flush=True)
        if step["requests"] < rate * seconds * 0.95 or step.get("p99_ms", 1e9) >= P99_BOUND_MS:
            break
    passed = [s["rate_per_s"] for s in steps if s["errors"] == 0
              and s.get("p99_ms", 1e9) < P99_BOUND_MS and s["requests"] >= s["rate_per_s"]
              * seconds * 0.95]
    return {"bound_p99_ms": P99_BOUND_MS, "seconds_per_rate": seconds, "steps": steps,
            "highest_rate_with_p99_under_bound": max(passed) if passed else None}


def reload_under_load(url: str, feed, pid: int, rate: float, seconds: float,
                      share: Path, day_file: Path) -> dict:
    """An open loop during which a new day is ingested and trained: the head moves.

    Latency is counted from each request's due time. The loop runs `seconds` and on until
    5 s after the train ended; "during the swap" is from the start of the train until 2 s
    after the first answer naming the new checkpoint.
    """
    import httpx

    from bench.serve_load import score_when_due

    fraudpipe = str(Path(sys.executable).parent / "fraudpipe")
    start_at = time.perf_counter() + 0.2
    records: list[tuple[float, float, str | None, int]] = []
    lock = threading.Lock()
    swap: dict[str, float] = {"stop_at": start_at + seconds + 600}
    sent = [0]

    def next_due() -> float | None:
        # open-ended: the loop runs `seconds`, and on until 5 s after the train ended
        with lock:
            when = start_at + sent[0] / rate
            if when > swap["stop_at"]:
                return None
            sent[0] += 1
            return when

    def sender() -> None:
        with httpx.Client(timeout=120) as http:
            while (when := next_due()) is not None:
                body = feed.take()
                if body is None:
                    return
                try:
                    reply = score_when_due(http, url, body, when)
                    status = reply.status_code
                    sha = reply.json()["checkpoint"]["sha256"] if status == 200 else None
                except httpx.HTTPError:
                    status, sha = 0, None
                with lock:
                    records.append((when, time.perf_counter() - when, sha, status))

    def new_head() -> None:
        time.sleep(seconds / 3)
        swap["train_started"] = time.perf_counter()
        for command in (["ingest", "--source", str(day_file)], ["train"]):
            subprocess.run([fraudpipe, *command, "--storage", str(share)], check=True,
                           capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        swap["train_ended"] = time.perf_counter()
        swap["stop_at"] = max(start_at + seconds, swap["train_ended"] + 5.0)

    senders = 16
    threads = [threading.Thread(target=sender) for _ in range(senders)]
    trainer = threading.Thread(target=new_head)
    for thread in [*threads, trainer]:
        thread.start()
    for thread in [*threads, trainer]:
        thread.join()
    records.sort()
    first_sha = records[0][2]
    switched = next((when for when, _, sha, _ in records if sha and sha != first_sha), None)
    start = swap.get("train_started", 0.0)
    end = (switched or swap.get("train_ended", start)) + 2.0
    during = [lat for when, lat, _, _ in records if start <= when <= end]
    from bench.serve_load import percentiles

    return {"rate_per_s": rate, "seconds": round(records[-1][0] - start_at, 1),
            "requests": len(records),
            "failed": sum(1 for r in records if r[3] != 200),
            "checkpoints_answered": len({r[2] for r in records if r[2]}),
            "train_seconds": round(swap.get("train_ended", start) - start, 2),
            "new_head_answered_after_train_start_s": (round(switched - start, 2)
                                                      if switched else None),
            "all": percentiles([r[1] for r in records]),
            "during_swap": {"requests": len(during), **percentiles(during)}}


def day_rolls(url: str) -> float:
    """The service's day rolls so far (its /metrics counter)."""
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=30).text
    return next(float(line.split()[-1]) for line in text.splitlines()
                if line.startswith("fraudpipe_serve_day_rolls_total"))


def around_roll(records: list[tuple[float, float, bytes]], new_day: list[bytes],
                seconds: float = 2.0) -> dict:
    """An open loop's requests due in the `seconds` before and after its first request of
    the next day (the one that rolls the service): how many and their latencies.

    `records`: (due time, latency, body) of each request; `new_day`: the next day's bodies.
    """
    from bench.serve_load import percentiles

    later = set(new_day)
    records = sorted(records, key=lambda record: record[0])
    first = next((when for when, _, body in records if body in later), None)
    if first is None:
        return {"next_day_requests": 0}
    before = [lat for when, lat, _ in records if first - seconds <= when < first]
    after = [lat for when, lat, _ in records if first <= when <= first + seconds]
    return {"next_day_requests": sum(1 for record in records if record[2] in later),
            "seconds": seconds, "before": {"requests": len(before), **percentiles(before)},
            "after": {"requests": len(after), **percentiles(after)}}


def parquet_body(day_file: Path) -> tuple[bytes, int]:
    """A day's transactions as a Parquet request body (no label), and its row count."""
    import pandas as pd

    frame = pd.read_parquet(day_file, columns=["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID",
                                               "TERMINAL_ID", "TX_AMOUNT"])
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    return sink.getvalue(), len(frame)


def settled(pid: int, idle_share: float = 0.05, seconds: float = 1.0,
            timeout: float = 120.0) -> float:
    """Wait until the process `pid` uses under `idle_share` of a core; the seconds waited.

    Just after /readyz the service still reads the next day's history files ahead in
    the background: a phase started then would count that work as its own.
    """
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = cpu_seconds(pid)
        time.sleep(seconds)
        if cpu_seconds(pid) - before < idle_share * seconds:
            break
    return round(time.perf_counter() - started, 1)


def big_batch(url: str, pid: int, day_file: Path) -> dict:
    """A whole day as one Parquet batch, end to end (sent, scored, answers received).

    Sent once the service is idle (`settled`): its CPU figure is the batch's own.
    """
    import httpx

    body, rows = parquet_body(day_file)
    waited = settled(pid)

    def send() -> dict:
        started = time.perf_counter()
        reply = httpx.post(f"{url}/v1/score/batch", content=body, timeout=900,
                           headers={"content-type": "application/vnd.apache.parquet"})
        seconds = time.perf_counter() - started
        answers = reply.content.count(b"\n") if reply.status_code == 200 else 0
        return {"transactions": rows, "body_bytes": len(body), "status": reply.status_code,
                "answers": answers, "seconds": round(seconds, 3),
                "transactions_per_s": round(rows / seconds, 1)}
    result = measured(pid, send, count="transactions")
    result["server_cpu_ms_per_transaction"] = result.pop("server_cpu_ms_per_request", None)
    result["waited_for_idle_s"] = waited
    return result
