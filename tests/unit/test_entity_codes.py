"""`entity_codes` numbers the state's ids first, then the days' new ids in id order.

The numbering fixes the row order of the next state file, so its bytes: the table lookup
(int64 ids in a narrow range) must number exactly as that rule says, source by source,
including sources that are empty or hold no new id.
"""

from __future__ import annotations

import numpy as np
import pytest

from trainer.features.state_sums import entity_codes


def _expected(sources: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    first = list(sources[0])
    new = sorted({int(i) for ids in sources[1:] for i in ids} - set(first))
    uniques = first + new
    code = {entity: position for position, entity in enumerate(uniques)}
    return [np.array([code[int(i)] for i in ids], np.int64) for ids in sources], np.array(
        uniques, np.int64)


@pytest.mark.parametrize("offset", [0, -50, 10**12])
def test_table_lookup_numbers_the_state_first_then_new_ids_in_order(offset):
    rng = np.random.default_rng(4)
    state = rng.permutation(200)[:80] + offset  # unique, in no order
    days = [rng.integers(0, 300, n) + offset for n in (500, 0, 40)]
    days.append(state[:10].copy())  # a day of known entities only
    sources = [state, *days]
    codes, uniques = entity_codes(sources)
    expected_codes, expected_uniques = _expected(sources)
    np.testing.assert_array_equal(uniques, expected_uniques)
    assert len(codes) == len(sources)
    for got, expected in zip(codes, expected_codes, strict=True):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)
