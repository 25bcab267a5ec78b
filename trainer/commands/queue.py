"""`fraudpipe queue`."""
