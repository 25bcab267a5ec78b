"""`fraudpipe evaluate`."""
