"""`fraudpipe worker`."""
