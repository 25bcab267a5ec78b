"""`fraudpipe lineage`."""
