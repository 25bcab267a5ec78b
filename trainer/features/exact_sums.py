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


def dd_add_into(total: tuple[np.ndarray, np.ndarray], b_hi: np.ndarray,
                b_lo: np.ndarray) -> None:
    """``total = dd_add(*total, b_hi, b_lo)`` in place, with `b_hi` and `b_lo` as scratch.

    The same operations on the same operands as `dd_add`, so the same bits; but where
    `dd_add` makes five new arrays this makes one. At a million rows a new array costs more
    than the arithmetic on it (the kernel hands out and zeroes its pages), and a day's
    window totals take dozens of these sums. The caller's `b_hi` and `b_lo` (gathers it
    owns) are overwritten; `total`'s arrays must not be views of them.
    """
    a_hi, a_lo = total
    s = a_hi + b_hi
    np.add(a_lo, b_lo, out=b_lo)  # b_lo: a_lo + b_lo; a_lo is free
    bb = np.subtract(s, a_hi, out=a_lo)  # TwoSum's bb = s - a_hi
    np.subtract(b_hi, bb, out=b_hi)  # b_hi: b_hi - bb
    np.subtract(s, bb, out=bb)
    np.subtract(a_hi, bb, out=bb)  # a_hi - (s - bb)
    e = np.add(bb, b_hi, out=bb)  # TwoSum's error, then ...
    np.add(e, b_lo, out=e)  # ... plus a_lo + b_lo
    hi = np.add(s, e, out=a_hi)
    np.subtract(hi, s, out=s)
    np.subtract(e, s, out=e)  # the new lo, in a_lo's array


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
    lo = np.empty_like(hi)
    lo[0] = 0.0
    # TwoSum of each step ``hi[i] + values[i]``, written into lo's array (one new array):
    # its rounded sum is cumsum's own output hi[i + 1]. (The first step, 0.0 + values[0],
    # may differ from it in a zero's sign only, and its error is +0.0 either way.)
    a, b, s, errors = hi[:-1], values, hi[1:], lo[1:]
    bb = s - a
    np.subtract(s, bb, out=errors)
    np.subtract(a, errors, out=errors)
    np.subtract(b, bb, out=bb)
    np.add(errors, bb, out=errors)
    np.cumsum(errors, out=errors)
    return hi, lo


def range_sums(hi: np.ndarray, lo: np.ndarray, start: np.ndarray,
               end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Double-double sums of the rows ``start:end`` from ``prefix_sums`` output."""
    return dd_sub(hi[end], lo[end], hi[start], lo[start])


def rounded(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The float64 nearest a double-double."""
    return hi + lo
