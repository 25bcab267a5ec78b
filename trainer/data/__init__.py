"""Transaction datasets: the schema, reading and validating files, ingest, the simulator."""
