"""How long a transaction may stay without a label before it counts as genuine.

Apart from `trainer.labels` (which reads data) so that `fraudpipe labels --help` can state
the default without importing pandas.
"""

from __future__ import annotations

#: The handbook's delay: a transaction without a label after this many days is genuine.
GENUINE_AFTER_DAYS = 7
