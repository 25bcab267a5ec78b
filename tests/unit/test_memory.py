"""A step's freed day-sized arrays are reused by the process, not faulted in again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trainer.memory import keep_freed_memory

REPO = Path(__file__).resolve().parents[2]

# A fresh interpreter allocates, touches and frees a 24 MB array (a 100k day's 29 inputs)
# three times and prints the page faults of each pass.
PASSES = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from trainer.memory import keep_freed_memory
    assert keep_freed_memory()
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    array = np.ones(3_000_000)
    del array
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*faults)
"""


def _faults(mode: str) -> list[int]:
    done = subprocess.run([sys.executable, "-c", PASSES, mode], cwd=REPO, check=True,
                          capture_output=True, text=True)
    return [int(n) for n in done.stdout.split()]


def test_a_freed_day_sized_array_is_reused_without_page_faults():
    # GIVEN glibc as it comes: the second array of the size is faulted in again
    assert _faults("default")[1] > 100
    # WHEN the thresholds are raised first, THEN the second and third reuse the first's pages
    assert _faults("keep")[1:] == [0, 0]


def test_raising_the_thresholds_twice_is_harmless():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True
