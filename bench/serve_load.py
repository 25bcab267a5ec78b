"""`fraudpipe serve` under load: a simulated day replayed in time order over loopback HTTP.

    .venv/bin/python -m bench serve [--seed S] [--quick] [--rate R] [--seconds S]

A share is simulated (default size: the handbook's 5,000 customers and 10,000 terminals,
44 days), ingested and trained once per (size, seed) in the data directory (the last
seven days are left out: each phase has its own days; a phase stops early when its days
run out, and says how many requests it sent). Then one `fraudpipe serve` process
(uvicorn, in-memory windows, ``--clock replay`` on the first served day, ``--lateness``
a day, since concurrent clients overtake each other) is started and measured:

- start-up: seconds from the process start to /readyz 200, and its memory (VmRSS, VmHWM
  from /proc) when ready and at the end;
- closed loop: C clients each sending the next transaction as soon as its answer came,
  for the given seconds: throughput and latency percentiles;
- open loop: requests due at a fixed rate (one every 1/R s) whatever the answers, sent by
  a pool of senders; a request's latency runs from when it was due (so a stalled server
  is not hidden: no coordinated omission), with the errors counted; it crosses a
  midnight (the last half of its requests' worth of one day, then the next day's), so
  its figures include a day roll, and the requests due in the 2 s before and after the
  roll are reported apart (`around_roll`);
- rate search: open loops of `SEARCH_STEP_SECONDS` (20 s) at `SEARCH_RATES` (300, 400,
  500, 600 requests/s), stopping at the first whose p99 passes 50 ms or that could not
  send its requests: the highest rate with p99 under 50 ms (at most 80 s);
- batch: the rest of the day's transactions as one JSON-lines request, end to end.

The client runs on the same machine as the service and competes with it for the CPUs:
the figures are a floor of what the service does on its own cores. `--quick` is a smoke
test (a tiny share, two seconds a loop), not a measurement.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

START = dt.date(2018, 4, 1)


def share_with_head(data_dir: Path, *, days: int, customers: int, terminals: int,
                    seed: int, served: int = 3,
                    learner: str | None = None) -> tuple[Path, Path, list[dt.date]]:
    """A share with all but the last `served` days ingested and trained (cached).

    `learner`: the chain's (default: `fraudpipe train`'s).
    """
    from trainer.cli import main

    where = data_dir / (f"serve-d{days}-c{customers}-t{terminals}-s{seed}-v{served}"
                        + (f"-{learner}" if learner else ""))
    landing, share = where / "landing", where / "share"
    served_days = [START + dt.timedelta(days=n) for n in range(days - served, days)]
    if not (where / ".complete").is_file():
        import shutil

        shutil.rmtree(where, ignore_errors=True)
        assert main(["simulate", "--out", str(where / "all"), "--start", START.isoformat(),
                     "--days", str(days), "--customers", str(customers), "--terminals",
                     str(terminals), "--seed", str(seed)]) == 0
        landing.mkdir(parents=True)
        for path in sorted((where / "all").glob("*.parquet")):
            if dt.date.fromisoformat(path.stem) not in served_days:
                path.rename(landing / path.name)
        assert main(["ingest", "--source", str(landing), "--storage", str(share)]) == 0
        assert main(["train", "--storage", str(share),
                     *(["--learner", learner] if learner else [])]) == 0
        (where / ".complete").write_text("")
    return share, where / "all", served_days


def bodies(day_files: list[Path], onto_first: bool = True) -> list[bytes]:
    """The days' transactions as request bodies, in (time, id) order.

    `onto_first`: later days are moved back onto the first (a day twice as busy), for the
    loops that need more transactions than one simulated day holds and no day roll;
    otherwise each keeps its own day (a loop over them crosses midnight).
    """
    import orjson
    import pandas as pd

    frames = [pd.read_parquet(p) for p in day_files]
    for back, frame in enumerate(frames):
        if onto_first:
            frame["TX_DATETIME"] -= pd.Timedelta(days=back)
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.sort_values(["TX_DATETIME", "TRANSACTION_ID"], kind="stable")
    return [orjson.dumps({"TRANSACTION_ID": int(r.TRANSACTION_ID),
                          "TX_DATETIME": r.TX_DATETIME.isoformat(),
                          "CUSTOMER_ID": int(r.CUSTOMER_ID), "TERMINAL_ID": int(r.TERMINAL_ID),
                          "TX_AMOUNT": float(r.TX_AMOUNT)})
            for r in frame.itertuples(index=False)]


def memory_mib(pid: int) -> dict:
    """VmRSS and VmHWM of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def percentiles(latencies: list[float]) -> dict:
    """p50/p90/p99/max in milliseconds."""
    if not latencies:
        return {}
    ms = np.array(latencies) * 1000
    return {f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 90, 99)} | {
        "max_ms": round(float(ms.max()), 2)}


class Feed:
    """The next transaction to send, shared by the senders (time order, each sent once)."""

    def __init__(self, items: list[bytes]):
        self._items = items
        self._next = 0
        self._lock = threading.Lock()
        #: Bodies past this one are not handed out (`share_left`).
        self.stop = len(items)

    def take(self) -> bytes | None:
        """The next body, None when the day (or the current share of it) is used up."""
        with self._lock:
            if self._next >= self.stop:
                return None
            self._next += 1
            return self._items[self._next - 1]

    @property
    def used(self) -> int:
        """How many were taken."""
        return self._next

    def share_left(self, parts: int) -> None:
        """Hand out only the next 1/`parts` of what is left (in time order).

        Loops that follow each other on one feed each get their share: on a fast host the
        first would otherwise use up the day and leave the next none.
        """
        self.stop = self._next + (len(self._items) - self._next) // parts


def warm_up(url: str, feed: Feed, requests: int = 5) -> None:
    """A few unmeasured requests: the first of a day rolls the service to it."""
    import httpx

    for _ in range(requests):
        body = feed.take()
        if body is not None:
            httpx.post(f"{url}/v1/score", content=body, timeout=120,
                       headers={"content-type": "application/json"})


def closed_loop(url: str, feed: Feed, clients: int, seconds: float) -> dict:
    """`clients` senders, each waiting for its answer before the next request."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            while time.perf_counter() < deadline and (body := feed.take()) is not None:
                sent = time.perf_counter()
                reply = http.post(f"{url}/v1/score", content=body,
                                  headers={"content-type": "application/json"})
                latencies.append(time.perf_counter() - sent)
                if reply.status_code != 200:
                    errors.append(reply.text[:200])

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"clients": clients, "requests": len(latencies), "errors": len(errors),
            "first_errors": errors[:3], "seconds": round(wall, 2),
            "requests_per_s": round(len(latencies) / wall, 1), **percentiles(latencies)}


def score_when_due(http, url: str, body: bytes, when: float):
    """Wait until `when` (a `time.perf_counter()` reading), then POST `body` to /v1/score.

    The open loops count latency from the due time, so a late sender still shows the wait.
    """
    pause = when - time.perf_counter()
    if pause > 0:
        time.sleep(pause)
    return http.post(f"{url}/v1/score", content=body, headers={"content-type": "application/json"})


class KeepAlive:
    """POSTs on one keep-alive HTTP/1.1 connection over a raw socket: (status, body).

    The open loops' client: httpx cost the client 0.81-0.84 ms of CPU a request, this
    0.09-0.10 ms; at 300/s that was a quarter of a core of the two the service shares,
    in 16 sender threads sharing one GIL (their lateness counts as the service's).
    """

    def __init__(self, url: str):
        host, _, port = url.removeprefix("http://").partition(":")
        self._address = (host, int(port))
        self._socket: socket.socket | None = None
        self._buffer = b""

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """One POST of a JSON body; the answer's status and body (OSError if cut)."""
        if self._socket is None:
            self._socket = socket.create_connection(self._address, timeout=120)
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buffer = b""
        self._socket.sendall(b"POST %b HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                             b"application/json\r\nContent-Length: %d\r\n\r\n%b"
                             % (path.encode(), len(body), body))
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._received()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        while len(rest) < length:
            rest += self._received()
        self._buffer = rest[length:]
        return int(head.split(b" ", 2)[1]), rest[:length]

    def _received(self) -> bytes:
        assert self._socket is not None
        data = self._socket.recv(65536)
        if not data:
            raise ConnectionError("the service closed the connection")
        return data

    def close(self) -> None:
        """Close the connection (the next post opens another)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def open_loop(url: str, feed: Feed, rate: float, seconds: float, senders: int = 16,
              records: list[tuple[float, float, bytes]] | None = None) -> dict:
    """Requests due every 1/`rate` s; latency counted from the due time.

    `records`: if given, each request's (due time, latency, body) is appended to it.
    """
    due: queue.Queue = queue.Queue()
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter() + 0.2
    count = int(rate * seconds)
    for i in range(count):
        due.put(start + i / rate)

    def sender() -> None:
        client = KeepAlive(url)
        try:
            while True:
                try:
                    when = due.get_nowait()
                except queue.Empty:
                    return
                body = feed.take()
                if body is None:
                    return
                pause = when - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                try:
                    status, answer = client.post("/v1/score", body)
                    if status != 200:
                        errors.append(answer[:200].decode(errors="replace"))
                except OSError as exc:
                    errors.append(repr(exc))
                    client.close()
                latencies.append(time.perf_counter() - when)
                if records is not None:
                    records.append((when, latencies[-1], body))
        finally:
            client.close()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"rate_per_s": rate, "seconds": seconds, "requests": len(latencies),
            "errors": len(errors), "first_errors": errors[:3], **percentiles(latencies)}


def batch(url: str, feed: Feed, rows: int) -> dict:
    """The next `rows` transactions as one JSON-lines request."""
    import httpx

    items = [body for _ in range(rows) if (body := feed.take()) is not None]
    started = time.perf_counter()
    reply = httpx.post(f"{url}/v1/score/batch", content=b"\n".join(items),
                       headers={"content-type": "application/x-ndjson"}, timeout=600)
    seconds = time.perf_counter() - started
    answers = reply.text.splitlines() if reply.status_code == 200 else []
    return {"transactions": len(items), "status": reply.status_code, "answers": len(answers),
            "seconds": round(seconds, 3),
            "transactions_per_s": round(len(items) / seconds, 1) if seconds else None}


def start_service(share: Path, today, port: int,
                  fraudpipe: str | None = None) -> tuple[subprocess.Popen, float]:
    """`fraudpipe serve` on `share` (replay clock from `today`) and its seconds to ready.

    `fraudpipe`: the executable (default: this environment's).
    """
    import httpx

    fraudpipe = fraudpipe or str(Path(sys.executable).parent / "fraudpipe")
    # A replayed day passes in seconds: its next day is prepared 12 replayed hours ahead
    # (mid-loop), as 15 minutes are ahead of a wall-clock midnight (not at the roll).
    # (A build without the option, measured as a baseline, prepares when it does.)
    usage = subprocess.run([fraudpipe, "serve", "--help"], capture_output=True, text=True)
    ahead = ["--prepare-ahead", "43200"] if "--prepare-ahead" in usage.stdout else []
    started = time.perf_counter()
    process = subprocess.Popen(
        [fraudpipe, "serve", "--storage", str(share), "--port", str(port), "--clock", "replay",
         "--today", today.isoformat(), "--lateness", "86400", "--log-level", "warning",
         *ahead],
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"fraudpipe serve exited {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process, round(time.perf_counter() - started, 2)
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    """Stop a service started by `start_service`."""
    process.terminate()
    process.wait(timeout=30)


#: Rates the search steps through (requests/s), each for `SEARCH_STEP_SECONDS`, until p99
#: passes the bound: from the open loop's 300/s upward, at most 80 s in all.
SEARCH_RATES = (300.0, 400.0, 500.0, 600.0)
#: Seconds per search step: at 300/s, p99 is then its 60 slowest requests (at 10 s, its
#: 15 slowest decided the step).
SEARCH_STEP_SECONDS = 20.0

#: The phases of `run`, in the order they run (each on later days than the one before).
PHASES = ("closed", "open", "search", "reload", "batch", "day_100k")


def run(seed: int = 0, quick: bool = False, data_dir: Path | None = None,
        rate: float | None = None, seconds: float | None = None,
        only: tuple[str, ...] = PHASES) -> dict:
    """Build (or reuse) the shares, start the service, run the phases `only`; the figures."""
    import shutil
    import tempfile

    from bench import serve_phases as phases
    from bench.serve_sizes import SIZES, big_day_share

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from redis_server import free_port

    data_dir = data_dir or Path(os.environ.get("FRAUDPIPE_BENCH_DATA",
                                               "/tmp/fraudpipe-bench"))
    size = ({"days": 14, "customers": 150, "terminals": 300} if quick
            else {"days": 44, "customers": 5000, "terminals": 10000})
    seconds = seconds or (2.0 if quick else 60.0)
    rate = rate or (20.0 if quick else 300.0)
    rates = [10.0, 20.0] if quick else list(SEARCH_RATES)
    search_seconds = 2.0 if quick else SEARCH_STEP_SECONDS
    cached, all_days, served = share_with_head(data_dir, seed=seed, served=7, **size)
    files = [all_days / f"{d}.parquet" for d in served]
    # the service runs on a copy: the reload phase ingests and trains a day on it
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    share = work / "share"
    shutil.copytree(cached, share)
    # each phase its own day(s), in day order (the replay clock only moves forward)
    # (the reload phase gets two days' rows: under load the new head's train takes a minute)
    # (the search gets four days' rows, ~40,000: its steps send up to 36,000; moved onto
    # its first day, so the reload phase's days stay later)
    # the open loop crosses a midnight: the last half of its requests' worth of one day,
    # then the next day (the service rolls mid-loop; its history prepared ahead)
    tail = int(rate * seconds / 2) + 5  # (+ the warm-up's)
    next_day = bodies(files[2:3], onto_first=False)
    feeds = {"closed": bodies(files[:1]),
             "open": bodies(files[1:2], onto_first=False)[-tail:] + next_day,
             "search": bodies(files[3:7]) if "search" in only else [],
             "reload": bodies(files[5:7])}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process, ready_seconds = start_service(share, served[0], port)
    pid = process.pid
    result = {"benchmark": "serve", "quick": quick, "seed": seed, "size": size,
              "served_days": [d.isoformat() for d in served],
              "requests_available": {name: len(items) for name, items in feeds.items()},
              "start_to_ready_seconds": ready_seconds,
              "memory_ready_mib": memory_mib(pid)}
    try:
        if "closed" in only:
            feed = Feed(feeds["closed"])
            warm_up(url, feed)
            result["closed_loop"] = []
            for left, clients in ((2, 1), (1, 4)):
                feed.share_left(left)
                result["closed_loop"].append(phases.measured(pid, lambda c=clients: closed_loop(
                    url, feed, c, seconds / 4)))
        if "open" in only:
            feed = Feed(feeds["open"])
            warm_up(url, feed)  # the roll to the loop's first day, outside its figures
            records: list[tuple[float, float, bytes]] = []
            rolls = phases.day_rolls(url)
            result["open_loop"] = phases.measured(pid, lambda: open_loop(
                url, feed, rate, seconds, records=records))
            result["open_loop"]["day_rolls"] = phases.day_rolls(url) - rolls
            result["open_loop"]["around_roll"] = phases.around_roll(records, next_day)
            print("open_loop", result["open_loop"], flush=True)
        if "search" in only:
            feed = Feed(feeds["search"])
            warm_up(url, feed)
            result["rate_search"] = phases.rate_search(url, feed, pid, rates, search_seconds,
                                                       open_loop)
        if "reload" in only:
            feed = Feed(feeds["reload"])
            warm_up(url, feed)
            # a quarter of the open loop's rate: the swap's cost, not a queue, is measured
            result["reload_under_load"] = phases.reload_under_load(
                url, feed, pid, rate / 4, seconds / 2, share, files[0])
            print("reload_under_load", result["reload_under_load"], flush=True)
        if "batch" in only:
            result["batch_default_size"] = phases.big_batch(url, pid, files[6])
        result["memory_end_mib"] = memory_mib(pid)
    finally:
        stop(process)
        shutil.rmtree(work, ignore_errors=True)
    if not quick and "day_100k" in only:
        big_share, day_file, day = big_day_share(data_dir, SIZES["100k"], seed)
        process, ready_seconds = start_service(big_share, day, port)
        try:
            memory = memory_mib(process.pid)
            result["day_100k"] = {"start_to_ready_seconds": ready_seconds,
                                  "memory_ready_mib": memory,
                                  "batch": phases.big_batch(url, process.pid, day_file),
                                  "memory_end_mib": memory_mib(process.pid)}
        finally:
            stop(process)
    for name in ("closed_loop", "batch_default_size", "day_100k"):
        print(name, result.get(name), flush=True)
    return result
