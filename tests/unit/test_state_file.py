"""The feature state file reads back each kind from its own row groups and columns only.

`from_parquet` decodes, per kind, the row groups holding its rows and the columns of its
prefix; the reading must not depend on where the row groups end (a file rewritten with
other row groups reads the same state) and must keep every byte of a round trip.
"""

from __future__ import annotations

import datetime as dt
import io

import pyarrow.parquet as pq
import pytest
from test_feature_state import START, day_columns, random_days, read

from trainer.features.state_advance import advance
from trainer.features.state_file import from_parquet, to_parquet


@pytest.mark.parametrize("id_type", ["int", "str"])
def test_a_state_reads_back_to_the_same_bytes_whatever_its_row_groups(id_type):
    # GIVEN a state of every kind (terminals with first frauds), written as the step does
    frame = random_days(5, 40, 30, customers=200, terminals=150, id_type=id_type)
    columns = day_columns(frame)
    last = START + dt.timedelta(days=39)
    data = to_parquet(advance(None, last, read(columns, None, last), profiles=True).state)
    # AND the same table rewritten with row groups that cut across the kinds
    table = pq.read_table(io.BytesIO(data))
    rewritten = io.BytesIO()
    pq.write_table(table, rewritten, row_group_size=37)
    assert pq.ParquetFile(io.BytesIO(rewritten.getvalue())).metadata.num_row_groups > 3
    # WHEN both are read
    # THEN each gives the state written, to the byte
    for source in (data, rewritten.getvalue()):
        assert to_parquet(from_parquet(source, "test")) == data
