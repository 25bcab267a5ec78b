"""Locks on the share's files, across processes, pods (NFS lock manager) and threads."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Exclusive lock on `path` across processes and pods, and across threads.

    fcntl locks go through NFS's lock manager, but they belong to the process, so
    threads of one process would all pass; a per-path thread lock covers that case.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(str(path.resolve()), threading.Lock())
    with thread_lock, open(path, "a+") as handle:
        fcntl.lockf(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def shared_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Shared lock on `path`: any number of holders, but no `try_exclusive_lock` meanwhile.

    A training step holds its day's lock this way for its whole run, so an ingest cannot
    replace the dataset it is training on (two steps of one day may still overlap: the
    lineage's compare-and-swap settles them).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.lockf(handle.fileno(), fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def try_exclusive_lock(path: str | os.PathLike[str]) -> Iterator[bool]:
    """Exclusive lock on `path` without waiting; yields False when someone holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_UN)
