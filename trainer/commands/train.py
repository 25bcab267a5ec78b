"""`fraudpipe train`."""
