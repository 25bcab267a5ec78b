"""The Redis dataset queue: connection settings, the queue, its scripts and the worker."""
