"""Randomised kill -9 runs: a reduced one in the default run, the full one marked slow.

Full figures: `python bench/chaos.py` (same code, prints JSON).
"""

from __future__ import annotations

import pytest

from tests.chaos.harness import run_chaos

pytestmark = pytest.mark.integration


# The run stops killing when its budget is spent, and the kill count is asserted: the budget
# is for a machine busy with other work (a quiet one needs ~25 s), not a speed target. Each
# kill costs a worker's start (~4 s of CPU): the default run kills 5 times, the slow one 50.
@pytest.mark.timeout(1500)
def test_reduced_chaos_run_keeps_the_invariant(tmp_path, redis_url):
    figures = run_chaos(tmp_path, redis_url, datasets=8, kills=5, seed=1, timeout=900)
    assert figures.external_kills == 5
    assert (figures.lost, figures.duplicated, figures.forked, figures.dead) == (0, 0, 0, 0)
    assert figures.trained == 8


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_full_chaos_run_50_kills_30_datasets_3_workers(tmp_path, redis_url):
    figures = run_chaos(tmp_path, redis_url, datasets=30, kills=50, seed=2, timeout=1500)
    print(figures.as_dict())
    assert figures.external_kills + figures.fault_kills >= 50
    assert (figures.lost, figures.duplicated, figures.forked, figures.dead) == (0, 0, 0, 0)
    assert figures.trained == 30
