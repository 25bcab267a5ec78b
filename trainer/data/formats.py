"""The file formats the simulator writes (`fraudpipe simulate --format`).

Apart from the simulator, which needs numpy and pandas, so that the command line can
offer them as choices without importing either.
"""

from __future__ import annotations

#: Formats of `trainer.data.simulator.write_day`: canonical Parquet, or the GKE sample's
#: pickle layout.
FORMATS = ("parquet", "pkl")
