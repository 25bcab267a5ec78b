"""fraudpipe's domain: datasets, features, the warm-start model, checkpoints, the queue.

This package runs inside every training pod and every test, so it imports neither Prefect
nor Hera.
"""

__version__ = "0.1.0"
