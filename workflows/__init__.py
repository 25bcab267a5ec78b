"""fraudpipe workflows."""
