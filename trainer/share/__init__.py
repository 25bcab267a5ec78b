"""The share's record: the one home of every file fraudpipe keeps on the storage root.

Where each file lives (`layout`), how it is written safely (`files`) and locked
(`locks`), the manifest of ingested days (`manifest`), the lineage of trained days
(`lineage`) and the checkpoints it lists (`checkpoints`). Everything that reads or writes
the share (ingest, features, step, replay, labels, arrival scoring, repair, the CLI and
the flows) comes through here; this package imports nothing of fraudpipe above it but the
errors and the learners' trusted types.
"""
