"""The ASGI application of `fraudpipe serve` (plain ASGI; bodies parsed with orjson).

Routes: ``POST /v1/score`` (one JSON object; ``?inputs=true`` adds the model inputs,
``?reasons=N`` the number of reasons, default the service's), ``POST /v1/score/batch``
(JSON lines, an Arrow IPC stream or Parquet; answers as JSON lines in the body's order;
``?reasons=N``, default 0; ``?inputs=true``), ``GET /healthz`` (the process answers),
``GET /readyz`` (200 only with a verified head and the serving day's history loaded),
``GET /metrics`` (Prometheus text).

Plain ASGI rather than a framework: five fixed routes need no router, and around one
transaction FastAPI's request object, parameter solving, HTTP middleware and anyio's
thread hand-off cost ~2.2 ms of server CPU beyond the scoring itself (5.8 ms a request
against 3.6 ms in process); here the HTTP part is ~0.5 ms (uvicorn's h11 parser ~0.3 ms
of it).

Where a transaction is scored: with the day's windows in this process (no I/O), on the
event loop itself; otherwise (a Redis round trip), and for a day roll, a repeat waiting
for its first answer and every batch, in a small thread pool so that the loop keeps
reading requests meanwhile. Handing each ~1.5 ms of scoring to a thread made the loop
and the thread take turns at the GIL: a thread that wants it back waits up to the
interpreter's switch interval (5 ms) while the other computes, so under load the loop
stalled ~6 ms at a time, most of the time (`bench.serve_tail`), and those stalls made
the slowest 1%.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

import orjson

from trainer.serving.intraday import MemoryIntraday
from trainer.serving.requests import RequestError
from trainer.serving.scorer import Scorer, WouldWait

log = logging.getLogger(__name__)

#: Largest single-transaction body, in bytes.
MAX_ONE_BYTES = 16 * 1024
#: Largest batch body, in bytes (100,000 JSON lines are ~15 MB).
MAX_BATCH_BYTES = 256 * 1024 * 1024
#: Threads scoring requests (the GIL runs one at a time; the others wait on Redis or I/O).
SCORING_THREADS = 4
#: (method, path) -> route name; a known path with another method is a 405.
ROUTES = {("POST", "/v1/score"): "/v1/score", ("POST", "/v1/score/batch"): "/v1/score/batch",
          ("GET", "/healthz"): "/healthz", ("GET", "/readyz"): "/readyz",
          ("GET", "/metrics"): "/metrics"}
PATHS = {path for _, path in ROUTES}
JSON = b"application/json"
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value not in TRUE | FALSE:
        raise RequestError(422, f"query parameter {name!r} is {value!r}; expected true or "
                                f"false", name)
    return value in TRUE


def _count(query: dict[str, str], name: str, default: int) -> int:
    value = query.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) > 100:
        raise RequestError(422, f"query parameter {name!r} is {value!r}; expected an integer "
                                f"from 0 to 100", name)
    return int(value)


class ServeApp:
    """The service's ASGI callable around `scorer` (started and stopped with the server)."""

    def __init__(self, scorer: Scorer, *, start: bool = True,
                 max_one_bytes: int = MAX_ONE_BYTES, max_batch_bytes: int = MAX_BATCH_BYTES,
                 threads: int = SCORING_THREADS):
        self.scorer = scorer
        self.metrics = scorer.metrics
        self._start = start
        self._limits = {"/v1/score": max_one_bytes, "/v1/score/batch": max_batch_bytes}
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="serve")
        # Metric children bound once: `labels()` looks its child up on every call.
        self._latency = {route: self.metrics.latency.labels(route)
                         for route in (*ROUTES.values(), "other")}
        self._counted: dict[tuple[str, int], Any] = {}
        # In-process windows: recording and reading a card's rows never waits on I/O.
        self._inline = isinstance(scorer.intraday, MemoryIntraday)

    async def __call__(self, scope: dict, receive, send) -> None:
        """Serve one ASGI connection scope (HTTP requests and the lifespan)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._start:
                    await asyncio.get_running_loop().run_in_executor(self._pool,
                                                                     self.scorer.start)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.scorer.stop()
                self._pool.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict, receive, send) -> None:
        started = time.perf_counter()
        path = scope["path"]
        route = ROUTES.get((scope["method"], path), "other")
        kind = JSON
        try:
            if route == "other":
                raise (RequestError(405, f"{scope['method']} {path}: method not allowed")
                       if path in PATHS else RequestError(404, f"no route {path}; expected "
                                                               f"one of {sorted(PATHS)}"))
            status, body, kind = await self._route(route, scope, receive)
        except RequestError as exc:
            status, body = exc.status, orjson.dumps(exc.to_json())
        except Exception as exc:  # noqa: BLE001 - a failure answers 500, the service lives
            self.metrics.errors.labels("scoring").inc()
            log.exception("serve: %s failed", path)
            status = 500
            body = orjson.dumps({"error": f"internal error: {type(exc).__name__}: {exc}"})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        self._latency[route].observe(time.perf_counter() - started)
        counter = self._counted.get((route, status))
        if counter is None:
            counter = self._counted[route, status] = self.metrics.requests.labels(
                route, str(status))
        counter.inc()

    async def _route(self, route: str, scope: dict, receive) -> tuple[int, bytes, bytes]:
        if route == "/v1/score" or route == "/v1/score/batch":
            query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
            body = await _body(scope, receive, self._limits[route])
            loop = asyncio.get_running_loop()
            if route == "/v1/score":
                inputs = _flag(query, "inputs")
                reasons = _count(query, "reasons", self.scorer.config.reasons)
                if self._inline:
                    try:
                        return 200, orjson.dumps(self.scorer.score_one(
                            body, inputs, reasons, wait=False)), JSON
                    except WouldWait:
                        pass  # a roll or a pending first answer: waited for in the pool
                answer = await loop.run_in_executor(
                    self._pool, self.scorer.score_one, body, inputs, reasons)
                return 200, orjson.dumps(answer), JSON
            answers = await loop.run_in_executor(
                self._pool, self.scorer.score_batch, body, _header(scope, b"content-type"),
                _count(query, "reasons", 0), _flag(query, "inputs"))
            return 200, b"\n".join(answers) + b"\n", b"application/x-ndjson"
        if route == "/healthz":
            return 200, orjson.dumps({"status": "alive"}), JSON
        if route == "/readyz":
            ready, why = self.scorer.ready()
            serving = self.scorer.serving
            document: dict = {"ready": ready, "reason": why}
            if serving is not None:
                document |= {"checkpoint": serving.head.describe(),
                             "serving_day": serving.day.isoformat()}
            return 200 if ready else 503, orjson.dumps(document), JSON
        return 200, self.metrics.text(), b"text/plain; version=0.0.4; charset=utf-8"


def _header(scope: dict, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


async def _body(scope: dict, receive, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (declared or actual)."""
    declared = _header(scope, b"content-length")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body is {declared} bytes; expected at most {limit}")
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body exceeds {limit} bytes; expected at most "
                                    f"{limit}")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def create_app(scorer: Scorer, *, start: bool = True, max_one_bytes: int = MAX_ONE_BYTES,
               max_batch_bytes: int = MAX_BATCH_BYTES) -> ServeApp:
    """The service's application around `scorer` (started and stopped with the app)."""
    return ServeApp(scorer, start=start, max_one_bytes=max_one_bytes,
                    max_batch_bytes=max_batch_bytes)
