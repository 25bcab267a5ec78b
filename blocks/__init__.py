"""fraudpipe blocks."""
