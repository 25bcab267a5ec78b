"""The ASGI application of `fraudpipe serve` (FastAPI; bodies parsed with orjson).

Routes: ``POST /v1/score`` (one JSON object), ``POST /v1/score/batch`` (JSON lines, an
Arrow IPC stream or Parquet; answers as JSON lines in the body's order), ``GET /healthz``
(the process answers), ``GET /readyz`` (200 only with a verified head and the serving
day's history loaded), ``GET /metrics`` (Prometheus text).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from trainer.serving.requests import RequestError
from trainer.serving.scorer import Scorer

log = logging.getLogger(__name__)

#: Largest single-transaction body, in bytes.
MAX_ONE_BYTES = 16 * 1024
#: Largest batch body, in bytes (100,000 JSON lines are ~15 MB).
MAX_BATCH_BYTES = 256 * 1024 * 1024
ROUTES = {"/v1/score", "/v1/score/batch", "/healthz", "/readyz", "/metrics"}


def _json(document: object, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type="application/json")


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (declared or actual)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body is {declared} bytes; expected at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body exceeds {limit} bytes; expected at most "
                                    f"{limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(scorer: Scorer, *, start: bool = True, max_one_bytes: int = MAX_ONE_BYTES,
               max_batch_bytes: int = MAX_BATCH_BYTES) -> FastAPI:
    """The service's application around `scorer` (started and stopped with the app)."""
    metrics = scorer.metrics

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start:
            await run_in_threadpool(scorer.start)
        try:
            yield
        finally:
            scorer.stop()

    app = FastAPI(title="fraudpipe serve", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)

    @app.middleware("http")
    async def measure(request: Request, call_next):
        route = request.url.path if request.url.path in ROUTES else "other"
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            metrics.requests.labels(route, "500").inc()
            raise
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        metrics.requests.labels(route, str(response.status_code)).inc()
        return response

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        return _json(exc.to_json(), exc.status)

    @app.exception_handler(Exception)
    async def failure(request: Request, exc: Exception) -> Response:
        metrics.errors.labels("scoring").inc()
        log.exception("serve: %s failed", request.url.path)
        return _json({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500)

    @app.post("/v1/score")
    async def score(request: Request, inputs: bool = False) -> Response:
        body = await _body(request, max_one_bytes)
        return _json(await run_in_threadpool(scorer.score_one, body, inputs))

    @app.post("/v1/score/batch")
    async def score_batch(request: Request, reasons: int = 0) -> Response:
        body = await _body(request, max_batch_bytes)
        answers = await run_in_threadpool(scorer.score_batch, body,
                                          request.headers.get("content-type", ""), reasons)
        return Response(b"".join(orjson.dumps(a) + b"\n" for a in answers),
                        media_type="application/x-ndjson")

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"status": "alive"})

    @app.get("/readyz")
    async def readyz() -> Response:
        ready, why = scorer.ready()
        serving = scorer.serving
        document = {"ready": ready, "reason": why}
        if serving is not None:
            document |= {"checkpoint": serving.head.describe(),
                         "serving_day": serving.day.isoformat()}
        return _json(document, 200 if ready else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app
