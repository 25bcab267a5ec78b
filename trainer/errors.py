"""Errors of the trainer package: one base class, one subclass per kind of failure.

The worker and the orchestrators decide what to retry from the class alone:
`PermanentError` subclasses are never retried (the dataset goes to the dead-letter list),
everything else is.
"""

from __future__ import annotations

import errno


class FraudpipeError(Exception):
    """Base class of every error fraudpipe raises on purpose."""

    #: Exit code of the CLI for this error. Argo's retry expression reads it.
    exit_code = 1


class PermanentError(FraudpipeError):
    """A failure that retrying cannot fix (bad data, a day out of order)."""

    exit_code = 3


class DatasetValidationError(PermanentError):
    """A dataset file does not meet the schema; the message names file, row or column."""


class OutOfOrderError(PermanentError):
    """A step was asked for a day earlier than the lineage head; use replay instead."""


class IncompleteHistoryError(PermanentError):
    """A day of a features window that the ingest manifest lists is missing or changed."""


class ChangedDatasetError(PermanentError):
    """A dataset already trained on was offered again with different content."""


class NotAShareError(PermanentError):
    """The storage root does not exist, is a file, or holds no fraudpipe share.

    Permanent: a retry meets the same missing mount or typo, and a worker that went on
    would dead-letter every dataset it leased.
    """


class LineageError(FraudpipeError):
    """The lineage does not verify: a missing or corrupted checkpoint, a broken link."""

    exit_code = 4


class LineageMissingError(LineageError, PermanentError):
    """The share holds checkpoints but no `output/lineage.json`: the record is lost.

    Exit code 4 like every lineage error, and permanent (never retried): only restoring
    the file helps.
    """


class LineageDamagedError(LineageError, PermanentError):
    """`output/lineage.json` is not JSON or not of the expected shape (exit 4, permanent).

    `fraudpipe lineage --repair` rebuilds it from what the share can prove.
    """


class HeadMovedError(FraudpipeError):
    """Compare-and-swap on the lineage head failed: someone else committed first."""

    exit_code = 5


class InputChangedError(FraudpipeError):
    """A step's dataset changed on the share while it trained; nothing was committed.

    Exit code 5 like `HeadMovedError`: a retry trains on the content now on the share.
    """

    exit_code = 5


class LeaseLostError(FraudpipeError):
    """The caller's lease expired and the item belongs to someone else now."""

    exit_code = 6


class QueueConnectionError(FraudpipeError):
    """Redis could not be reached or refused us; the message says what to check."""

    exit_code = 7


class StorageFullError(FraudpipeError):
    """The share has no space left (ENOSPC); nothing half-written was published.

    Retryable (exit 8): the same step succeeds once space is freed or the volume grown.
    """

    exit_code = 8


def storage_error(exc: OSError, storage: str | None) -> FraudpipeError | None:
    """The fraudpipe error for an OSError of the share (a full disk), or None.

    Every write goes to a temporary file that is renamed only once complete, so a
    write that hit a full disk published nothing and a retry is safe.
    """
    # pyarrow's write errors carry the text but not always the errno.
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left" not in str(exc):
        return None
    where = f"the share {storage}" if storage else "the share"
    return StorageFullError(
        f"no space left on {where} ({exc.strerror or exc} writing {exc.filename or 'a file'}); "
        "nothing half-written was published. Free space or grow the volume, then run the "
        "same command again (exit 8: retrying helps)")
