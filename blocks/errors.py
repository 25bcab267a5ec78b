"""Errors the blocks raise after construction.

Bad field values never reach these: pydantic validators reject them when the block is
built (a `pydantic.ValidationError` naming the field). These cover what a valid block
still cannot do: render manifests it has no provisioning for, reach a module that is not
installed, or touch a path outside the share.
"""

from __future__ import annotations


class BlockError(Exception):
    """Base class of every error the fraudpipe blocks raise on purpose."""


class ProvisioningNotConfiguredError(BlockError):
    """A Filestore block with neither static (`ip_address`) nor dynamic provisioning
    (`storage_class`) was asked for Kubernetes manifests."""


class PathEscapesShareError(BlockError, ValueError):
    """A path resolves outside the share's root (`..`, an absolute path, a symlink).

    Subclasses `ValueError` to match what Prefect's own file systems raise.
    """


class MissingComponentError(BlockError, ImportError):
    """A module the block delegates to (`trainer.queue.work_queue`, `trainer.queue.settings`,
    hera) could not be imported; the message says what to install or update."""
