"""`fraudpipe step`."""
