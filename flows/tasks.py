"""The Prefect task that trains one day, and its retry policy.

The one training task wraps `trainer.step.run_step`. Prefect retries it with exponential
backoff, but only for errors that a retry can fix: a `PermanentError` (bad dataset, day
out of order) or a lost lease fails at once (`retry_condition_fn`). Caching is off: a
step is idempotent through the lineage (a day already on the chain is skipped), and its
inputs include a live guard callable that no cache key could hash.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from trainer.errors import LeaseLostError, PermanentError
from trainer.share.layout import Share
from trainer.step import run_step

log = logging.getLogger(__name__)


def step_error(state: State) -> BaseException | None:
    """The exception a Failed task state carries (None if it carries none)."""
    try:
        value = state.result(raise_on_failure=False)
    except BaseException as exc:  # noqa: BLE001 - some result stores raise instead
        return exc
    return value if isinstance(value, BaseException) else None


def is_retryable(error: BaseException | None) -> bool:
    """True unless retrying cannot help: a permanent error or a lease held by another."""
    return not isinstance(error, PermanentError | LeaseLostError)


def retry_if_transient(task_obj: object, task_run: TaskRun, state: State) -> bool:
    """`retry_condition_fn` of the step task: retry only non-permanent errors."""
    return is_retryable(step_error(state))


def backoff_delays(retries: int, base_seconds: float) -> list[float]:
    """Exponential backoff: base, 2*base, 4*base, ... (`retries` delays)."""
    return [base_seconds * 2**attempt for attempt in range(max(retries, 0))]


@task(name="train-day", task_run_name="train-{day}", cache_policy=NO_CACHE,
      retry_condition_fn=retry_if_transient, log_prints=False)
def train_day(storage_root: str, day: str, learner: str | None = None,
              guard: Callable[[], None] | None = None) -> dict:
    """Train the chain's head on `day` (one `run_step`) and return its result as JSON.

    Args:
        storage_root: local root of the share.
        day: ISO date of the ingested dataset.
        learner: learner name for a new chain.
        guard: called under the lineage lock before the head moves (lease check).
    """
    logger = get_run_logger()
    result = run_step(Share.at(storage_root), dt.date.fromisoformat(day),
                      learner=learner, guard=guard)
    data = result.to_json()
    pre = (result.metrics.get("prequential") or {})
    logger.info("%s %s in %.2fs: transactions=%s frauds=%s auc_before=%s ap_before=%s "
                "cp100_before=%s train_accuracy=%s gap_days=%d",
                day, result.status, result.seconds, result.metrics.get("transactions"),
                result.metrics.get("frauds"), pre.get("auc_roc"), pre.get("average_precision"),
                pre.get("card_precision_at_100"), result.metrics.get("train_accuracy"),
                result.gap_days)
    return data
