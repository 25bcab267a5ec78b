"""Server CPU per `/v1/score` request: one client, one keep-alive socket, one at a time.

    .venv/bin/python -m bench.serve_cpu [--requests 2000] [--fraudpipe PATH]

Starts `fraudpipe serve` (PATH: another checkout's ``.venv/bin/fraudpipe`` to compare
versions) on the cached default-size share of `python -m bench serve`, replays its first
served day in time order over a raw socket (so the client's own cost stays small and out
of the server's figure), once the service is idle after its start-up work, and prints
the server's CPU seconds (utime + stime from /proc) per request, with wall latency and
the load average: on a shared machine the CPU figure is the one that compares.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

import numpy as np


def post(connection: socket.socket, body: bytes) -> bytes:
    """One POST /v1/score on a keep-alive connection; the answer's body (200 or raises)."""
    connection.sendall(b"POST /v1/score HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                       b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(rest) < length:
        rest += connection.recv(65536)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"not answered: {head!r} {rest[:300]!r}")
    return rest


def main(argv: list[str] | None = None) -> int:
    """Measure and print the figures as JSON."""
    import time

    from bench.serve_load import bodies, share_with_head, start_service, stop
    from bench.serve_phases import cpu_seconds, settled

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--fraudpipe", help="the fraudpipe executable to measure")
    parser.add_argument("--data-dir", default=os.environ.get("FRAUDPIPE_BENCH_DATA",
                                                             "/tmp/fraudpipe-bench"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from redis_server import free_port

    share, all_days, served = share_with_head(Path(args.data_dir), days=44, customers=5000,
                                              terminals=10000, seed=0, served=7)
    items = bodies([all_days / f"{served[0]}.parquet"])
    warm = 200
    if len(items) < warm + args.requests:
        raise SystemExit(f"the day has {len(items)} transactions; ask for at most "
                         f"{len(items) - warm} requests")
    port = free_port()
    process, ready = start_service(share, served[0], port, fraudpipe=args.fraudpipe)
    try:
        connection = socket.create_connection(("127.0.0.1", port))
        for body in items[:warm]:
            post(connection, body)
        # the next day's history files are read ahead in the background after the start:
        # not part of a request's cost
        settled(process.pid)
        load, cpu = os.getloadavg()[0], cpu_seconds(process.pid)
        latencies = []
        for body in items[warm:warm + args.requests]:
            sent = time.perf_counter()
            post(connection, body)
            latencies.append(time.perf_counter() - sent)
        used = cpu_seconds(process.pid) - cpu
        ms = np.array(latencies) * 1000
        print(json.dumps({
            "requests": args.requests, "server_cpu_ms_per_request": round(1000 * used
                                                                          / args.requests, 3),
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "start_to_ready_seconds": ready,
            "loadavg_before_after": [round(load, 2), round(os.getloadavg()[0], 2)]}))
    finally:
        stop(process)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
