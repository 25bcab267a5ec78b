"""`fraudpipe ingest`."""
