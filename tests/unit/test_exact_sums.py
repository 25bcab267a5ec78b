"""`two_sum`, `dd_add`, `dd_add_into` and `prefix_sums` (trainer/features/exact_sums.py)
reuse arrays for speed.

They must give the textbook formulas' bits (Knuth's TwoSum; the double-double addition) for
arrays, broadcast shapes and scalars, and never write into their inputs: the feature
state's sums pass through them daily, and a changed bit is a changed checkpoint.
"""

from __future__ import annotations

import numpy as np
import pytest

from trainer.features.exact_sums import dd_add, dd_add_into, dd_sub, prefix_sums, two_sum


def _two_sum_formula(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _dd_add_formula(a_hi, a_lo, b_hi, b_lo):
    s, e = _two_sum_formula(a_hi, b_hi)
    e = e + (a_lo + b_lo)
    hi = s + e
    return hi, e - (hi - s)


def _arrays(seed: int, shape) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # amounts and their squares of very different sizes, both signs: every rounding case
    return [rng.normal(size=shape) * 10.0 ** rng.integers(-3, 12, size=shape)
            for _ in range(4)]


@pytest.mark.parametrize("shapes", [((1000,),) * 4, ((3, 1), (4,), (3, 1), (4,)),
                                    ((5,), (5,), (), ())])
def test_the_sums_are_the_formulas_bit_for_bit_and_leave_their_inputs(shapes):
    # shape () is a numpy scalar added to arrays
    a_hi, a_lo, b_hi, b_lo = (np.resize(x, shape) if shape else np.float64(x[0])
                              for x, shape in zip(_arrays(0, (1000,)), shapes, strict=True))
    copies = [np.copy(x) for x in (a_hi, a_lo, b_hi, b_lo)]
    for ours, formula in ((two_sum(a_hi, b_hi), _two_sum_formula(a_hi, b_hi)),
                          (dd_add(a_hi, a_lo, b_hi, b_lo),
                           _dd_add_formula(a_hi, a_lo, b_hi, b_lo)),
                          (dd_sub(a_hi, a_lo, b_hi, b_lo),
                           _dd_add_formula(a_hi, a_lo, -b_hi, -b_lo))):
        for got, expected in zip(ours, formula, strict=True):
            np.testing.assert_array_equal(got, expected)
    for before, after in zip(copies, (a_hi, a_lo, b_hi, b_lo), strict=True):
        np.testing.assert_array_equal(before, after)


def test_scalars_add_as_the_formula():
    a, b = np.float64(1e16), np.float64(1.0)
    assert two_sum(a, b) == _two_sum_formula(a, b)
    assert dd_add(a, np.float64(0.5), b, np.float64(0.25)) == _dd_add_formula(
        a, np.float64(0.5), b, np.float64(0.25))
    s, e = two_sum(a, b)
    assert s == 1e16 and e == 1.0  # the error holds what the rounded sum lost


def _bits(*arrays: np.ndarray) -> list[bytes]:
    return [np.asarray(x).tobytes() for x in arrays]  # -0.0 and 0.0 differ here


def _with_zeros(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[::7], x[3::7] = 0.0, -0.0  # both zeros, where a sign bit would show a changed sum
    return x


def test_adding_into_a_total_is_dd_add_bit_for_bit_and_keeps_the_total_s_inputs():
    a_hi, a_lo, b_hi, b_lo = (_with_zeros(x) for x in _arrays(1, (1000,)))
    a_hi[5::7], b_hi[5::7] = 1.0, -1.0  # sums that cancel to exactly zero
    expected = _dd_add_formula(a_hi, a_lo, b_hi, b_lo)
    total = (a_hi.copy(), a_lo.copy())
    arrays = total
    dd_add_into(total, b_hi.copy(), b_lo.copy())
    assert total[0] is arrays[0] and total[1] is arrays[1]  # in place
    assert _bits(*total) == _bits(*expected)


@pytest.mark.parametrize("first", [-0.0, 0.0, -2.5, 1e-300])
def test_prefix_sums_are_two_sum_of_each_cumsum_step(first):
    values = _with_zeros(_arrays(2, (1000,))[0])
    values[0] = first
    hi = np.concatenate(([0.0], np.cumsum(values)))
    errors = [_two_sum_formula(hi[i], values[i])[1] for i in range(len(values))]
    lo = np.concatenate(([0.0], np.cumsum(errors)))
    assert _bits(*prefix_sums(values)) == _bits(hi, lo)
    assert _bits(*prefix_sums(values[:0])) == _bits([0.0], [0.0])
