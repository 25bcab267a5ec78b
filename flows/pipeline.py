"""The `daily-pipeline` flow: ingest the landing area, train what is queued, publish.

One flow run shows the whole day in the Prefect UI: the ingest task, one task per
trained day, and one set of artifacts (`flows/artifacts.py`): the headline (what to do
today), today's alerts table, the report, the metrics table, progress and the plot
inline. A run with no new files trains nothing, writes no plot and says so. A bad file
is quarantined and does not stop the run; a day whose step fails for good is
dead-lettered, the later days are still trained, and the run ends Failed naming it.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow

from flows.artifacts import RunSummary
from flows.ingest import run_ingest
from flows.resolve import resolve_share
from flows.train import finish, run_training


@flow(name="daily-pipeline", log_prints=True)
def daily_pipeline(
    landing: str,
    storage_block: str | None = None,
    storage: str | None = None,
    queue_block: str | None = None,
    redis_url: str | None = None,
    backend: Literal["local", "argo"] = "local",
    allow_pickle: bool = False,
    learner: str | None = None,
    step_retries: int = 2,
    retry_backoff_seconds: float = 10.0,
    argo_server_block: str | None = None,
) -> dict:
    """Ingest, then train, then publish the run's headline, alerts, report, table and plot.

    Args:
        landing: fsspec URL or local directory of the incoming files.
        storage_block: saved FilestoreStorage block (else `storage`).
        storage: local directory of the share.
        queue_block: saved RedisWorkQueue block (else `redis_url`).
        redis_url: Redis URL (else `$FRAUDPIPE_REDIS_URL`).
        backend: "local" or "argo".
        allow_pickle: also read `.pkl` files from the landing area.
        learner: learner name for a new chain.
        step_retries: retries of a step after a transient error.
        retry_backoff_seconds: first retry delay, doubled each retry.
        argo_server_block: saved ArgoServer block (argo backend).
    """
    share = resolve_share(storage_block, storage)
    summary = RunSummary(flow="daily-pipeline")
    run_ingest(share, summary, landing, queue_block=queue_block, redis_url=redis_url,
               allow_pickle=allow_pickle)
    run_training(share, summary, queue_block=queue_block, redis_url=redis_url,
                 backend=backend, learner=learner, step_retries=step_retries,
                 retry_backoff_seconds=retry_backoff_seconds,
                 argo_server_block=argo_server_block, storage_block=storage_block)
    return finish(summary, share)
