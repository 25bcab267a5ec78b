"""Keep a step's freed day-sized arrays in the process instead of handing them back.

A step allocates and frees arrays of a day's rows (tens of MB at 100,000 transactions)
over and over. glibc's malloc serves a block above its mmap threshold from a fresh mapping
and unmaps it on free, and gives the heap's top back beyond its trim threshold, so the
next array of that size is page-faulted in again: about 0.1 s of a 100k step's CPU
(bench/RESULTS.md). Raising both thresholds lets the process reuse that memory. What is
computed does not change (the same checkpoint, feature state and scores bytes). The peak
is the same at 100k and 60 MiB higher at 1M (1.73 GiB), where the kept heap sits beside
the day's larger arrays, which still get their own mappings. Other C libraries are left
as they are.
"""

from __future__ import annotations

import ctypes
import threading

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's largest mmap threshold on 64-bit systems (its DEFAULT_MMAP_THRESHOLD_MAX):
#: larger blocks (a 1M-transaction day's inputs) still come from their own mappings.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: Freed heap memory kept before the top is given back.
TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024

_lock = threading.Lock()
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds, once per process.

    Returns:
        True when they are raised (now or earlier), False where the C library has no
        ``mallopt`` or refuses it (not glibc).
    """
    global _done
    with _lock:
        if _done is None:
            mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
            _done = bool(mallopt is not None
                         and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
                         and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)
        return _done
