"""fraudpipe's domain: datasets, features, the warm-start model, checkpoints, the queue.

This package runs inside every training pod and every test, so it imports neither Prefect
nor Hera.
"""

import os
import sys

__version__ = "0.1.0"


def _use_jemalloc_for_arrow() -> None:
    """Arrow allocates from jemalloc (its Linux default until mimalloc replaced it).

    With mimalloc, the first two large Arrow allocations of a process cost ~0.13 s of CPU
    each, and a step is a fresh process (pod or task) that parses a few MB of Parquet: a
    100k-transaction step took 2.1-2.4 s of CPU against 1.85-1.94 s with jemalloc or the
    system allocator (`bench step`). `ARROW_DEFAULT_MEMORY_POOL` set by the user wins.
    Before pyarrow is imported, the variable is enough (Arrow reads it on its first
    allocation), and importing pyarrow here would cost every `fraudpipe --help` ~0.2 s.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    if "pyarrow" not in sys.modules:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "jemalloc"
        return
    import pyarrow as pa

    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)


_use_jemalloc_for_arrow()
