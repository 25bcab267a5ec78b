"""Sums of float64 arrays carried as double-doubles (a value plus its rounding error).

A window's amount sum is a difference of two prefix sums, or a state carried for months
by adding the day entering and subtracting the day leaving. In plain float64 either one
loses bits in proportion to the running total (a prefix over millions of rows, a sum
updated hundreds of times), not to the window. Carrying each sum as ``hi + lo`` with the
exact rounding error of every addition in ``lo`` (Knuth's TwoSum; Dekker, "A
floating-point technique for extending the available precision", 1971) keeps every window
sum within a few units in the last place of its true value, whichever way it is computed,
so the raw-history path and the carried state agree to far better than 1e-12.

Everything is vectorised numpy: ``np.cumsum`` adds sequentially, so the rounding error of
each of its steps can be recovered afterwards, in bulk, from its output.
"""

from __future__ import annotations

import numpy as np


def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a + b`` rounded, and the exact rounding error (``a + b == s + e`` exactly)."""
    s = a + b
    bb = s - a
    if not isinstance(bb, np.ndarray):  # scalars: no arrays to reuse
        return s, (a - (s - bb)) + (b - bb)
    # ``(a - (s - bb)) + (b - bb)``, the same operations in the same order, written into
    # two arrays instead of five: at a million rows each new array costs more than the
    # arithmetic on it, and a day's features take some hundred of these sums.
    error = s - bb
    np.subtract(a, error, out=error)
    np.subtract(b, bb, out=bb)
    np.add(error, bb, out=error)
    return s, error


def dd_add(a_hi: np.ndarray, a_lo: np.ndarray, b_hi: np.ndarray,
           b_lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The double-double sum of ``a_hi + a_lo`` and ``b_hi + b_lo``, renormalised."""
    s, e = two_sum(a_hi, b_hi)
    if not isinstance(e, np.ndarray) or e.shape != np.broadcast_shapes(
            np.shape(a_lo), np.shape(b_lo), e.shape):
        e = e + (a_lo + b_lo)
        hi = s + e
        return hi, e - (hi - s)
    # As above: ``e + (a_lo + b_lo)``, then ``e - (hi - s)``, in arrays two_sum made.
    np.add(e, a_lo + b_lo, out=e)
    hi = s + e
    np.subtract(hi, s, out=s)
    np.subtract(e, s, out=e)
    return hi, e


def dd_sub(a_hi: np.ndarray, a_lo: np.ndarray, b_hi: np.ndarray,
           b_lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The double-double difference ``(a_hi + a_lo) - (b_hi + b_lo)``."""
    return dd_add(a_hi, a_lo, -b_hi, -b_lo)


def prefix_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact-ish prefix sums of `values`, with a leading 0: ``(hi, lo)`` of length n + 1.

    ``hi`` is numpy's sequential ``cumsum``; ``lo`` accumulates the rounding error of each
    of its additions, recovered with TwoSum from consecutive outputs.
    """
    hi = np.empty(len(values) + 1)
    hi[0] = 0.0
    np.cumsum(values, out=hi[1:])
    _, errors = two_sum(hi[:-1], values)
    lo = np.empty_like(hi)
    lo[0] = 0.0
    np.cumsum(errors, out=lo[1:])
    return hi, lo


def range_sums(hi: np.ndarray, lo: np.ndarray, start: np.ndarray,
               end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Double-double sums of the rows ``start:end`` from ``prefix_sums`` output."""
    return dd_sub(hi[end], lo[end], hi[start], lo[start])


def rounded(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The float64 nearest a double-double."""
    return hi + lo
