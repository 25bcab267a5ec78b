"""Errors the flows raise on purpose; each is a `FraudpipeError`, like the trainer's.

The trainer's own errors (`trainer.errors`) and the blocks' (`blocks.errors`) share the
same base, so a caller catches every deliberate failure with one `except FraudpipeError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainer.errors import FraudpipeError

if TYPE_CHECKING:
    from prefect.states import State


class FlowConfigurationError(FraudpipeError):
    """A flow was given no usable storage or queue (the message names the parameter)."""


class LandingError(FraudpipeError):
    """The landing area cannot be listed or read (the message says what to install/check)."""


class DatasetsDeadLetteredError(FraudpipeError):
    """Some datasets of this run are in the dead-letter list; the message names each."""


class LabelProblemsError(FraudpipeError):
    """Label conflicts or quarantined label files hold days back; the message names each."""


def refused(exc: FraudpipeError) -> State:
    """The end of a flow run whose inputs it cannot start with: Failed, the cause its message.

    A raised error would reach the user three tracebacks deep (the task's, the flow's, the
    worker's) under "Flow run finished in state 'Failed'"; this logs the cause as one
    error line (what `prefect deployment run --watch` prints) and makes it the flow run's
    state message (what the UI shows).
    """
    from prefect import get_run_logger
    from prefect.logging.handlers import APILogHandler
    from prefect.states import Failed

    get_run_logger().error("%s", exc)
    # Sent before the state changes: a watcher stops listening soon after a final state.
    APILogHandler().flush()
    return Failed(message=str(exc))
