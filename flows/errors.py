"""Errors the flows raise on purpose; each is a `FraudpipeError`, like the trainer's.

The trainer's own errors (`trainer.errors`) and the blocks' (`blocks.errors`) share the
same base, so a caller catches every deliberate failure with one `except FraudpipeError`.
"""

from __future__ import annotations

from trainer.errors import FraudpipeError


class FlowConfigurationError(FraudpipeError):
    """A flow was given no usable storage or queue (the message names the parameter)."""


class LandingError(FraudpipeError):
    """The landing area cannot be listed or read (the message says what to install/check)."""


class DatasetsDeadLetteredError(FraudpipeError):
    """Some datasets of this run are in the dead-letter list; the message names each."""


class LabelProblemsError(FraudpipeError):
    """Label conflicts or quarantined label files hold days back; the message names each."""
