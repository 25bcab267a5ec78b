"""fraudpipe flows."""
