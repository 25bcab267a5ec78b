"""Errors the blocks raise after construction.

Bad field values never reach these: pydantic validators reject them when the block is
built (a `pydantic.ValidationError` naming the field). These cover what a valid block
still cannot do: render manifests it has no provisioning for, reach a module that is not
installed, or touch a path outside the share.
"""

from __future__ import annotations

from trainer.errors import FraudpipeError


class BlockError(FraudpipeError):
    """Base class of every error the fraudpipe blocks raise on purpose.

    A `FraudpipeError`, so the CLI's handler reports it (exit code 1) like any other.
    """


class ProvisioningNotConfiguredError(BlockError):
    """A Filestore block without provisioning was asked for Kubernetes manifests.

    It has neither static (`ip_address`) nor dynamic provisioning (`storage_class`).
    """


class PathEscapesShareError(BlockError, ValueError):
    """A path resolves outside the share's root (`..`, an absolute path, a symlink).

    Subclasses `ValueError` to match what Prefect's own file systems raise.
    """


class MissingComponentError(BlockError, ImportError):
    """A module a block delegates to could not be imported.

    The message says what to install or update.
    """
