"""`advance` refuses a day's rows that are not on that day, naming the first such row.

The state is kept per day file, so a row filed under the wrong day would be counted in the
wrong windows; the check looks at the day's extremes first and only then for the row.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from test_feature_state import START, day_columns, random_days, read

from trainer.errors import DatasetValidationError
from trainer.features.compute import NS_PER_DAY
from trainer.features.state_advance import advance


@pytest.mark.parametrize("shift", [-1, NS_PER_DAY])
def test_a_row_outside_its_day_is_refused_with_its_row_number(shift):
    frame = random_days(6, 10, 20, customers=30, terminals=20)
    columns = day_columns(frame)
    last = START + dt.timedelta(days=9)
    days = read(columns, None, last)
    edge = last - dt.timedelta(days=7)
    times = days[edge]["TX_DATETIME"].copy()
    start = int(np.datetime64(edge.isoformat(), "ns").astype(np.int64))
    times[3] = start + shift  # just before midnight, or the next day's midnight
    days[edge] = {**days[edge], "TX_DATETIME": times}
    with pytest.raises(DatasetValidationError, match=f"row 3: .*not on {edge.isoformat()}"):
        advance(None, last, days, profiles=True)
    advance(None, last, read(columns, None, last), profiles=True)  # the day as it was: fine
