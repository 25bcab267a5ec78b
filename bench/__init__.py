"""Benchmarks of fraudpipe beside the GKE sample: `python -m bench --help`."""
