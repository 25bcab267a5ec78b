"""`fraudpipe simulate`: placeholder until the simulator lands."""
