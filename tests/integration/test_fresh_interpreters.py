"""What only a new Python process shows: import side effects, and bytes across interpreters.

Each test starts fresh interpreters (`python -c`): a checkpoint's bytes must not depend on
the process that wrote it (skops names objects by id()), reading Parquet bytes must not
import pyarrow.dataset, and importing trainer picks Arrow's memory pool.
"""

from __future__ import annotations

import sys

import pytest

from tests.shares import model_digests_in_fresh_interpreters
from trainer.learners import DEFAULT_LEARNER
from trainer.learners.registry import learner_inputs

pytestmark = pytest.mark.integration

#: Columns of the default learner's inputs.
WIDTH = len(learner_inputs(DEFAULT_LEARNER))


def test_same_model_gives_same_bytes_across_processes(tmp_path):
    # GIVEN the same training run in two separate interpreters WHEN each dumps its model
    digests = model_digests_in_fresh_interpreters(
        f"rng=np.random.default_rng(0); X=rng.normal(size=(500,{WIDTH}));"
        "y=(X[:,0]>1.5).astype(int); m=make_learner().partial_fit(X,y)")
    # THEN the bytes are identical (skops' id()-based names were renumbered)
    assert len(digests) == 1


def test_default_learner_bytes_are_the_same_in_another_process():
    width = len(learner_inputs(DEFAULT_LEARNER))
    digests = model_digests_in_fresh_interpreters(
        f"rng=np.random.default_rng(0); X=rng.normal(size=(3000,{width}));"
        "y=(X[:,0]>1.8).astype(int); m=make_learner();"
        "[m.partial_fit(X[i::2], y[i::2]) for i in range(2)]")
    assert len(digests) == 1 and "" not in digests


def test_reading_does_not_import_pyarrow_dataset():
    # WHY: pq.read_table imports pyarrow.dataset on its first call (~0.25 s of CPU), paid
    # by every training step, whatever its day size.
    import subprocess

    code = ("import io, sys, pyarrow as pa, pyarrow.parquet as pq\n"
            "from trainer.data.parquet import table_from_bytes\n"
            "s = io.BytesIO(); pq.write_table(pa.table({'a': [1]}), s)\n"
            "assert table_from_bytes(s.getvalue(), ['a']).num_rows == 1\n"
            "print('pyarrow.dataset' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_importing_trainer_sets_arrow_memory_pool_unless_the_user_chose_one():
    # WHY: with mimalloc, Arrow's default, a fresh step process paid ~0.13 s of CPU on each
    # of its first two large allocations.
    import os
    import subprocess

    code = "import trainer, pyarrow as pa; print(pa.default_memory_pool().backend_name)"

    def backend(**env: str) -> str:
        clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env={**clean, **env}).stdout.strip()

    assert backend() in ("jemalloc", "system")
    assert backend(ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"
    # AND when pyarrow was imported first (trainer then sets the pool itself)
    code = "import pyarrow as pa, trainer; print(pa.default_memory_pool().backend_name)"
    assert backend() in ("jemalloc", "system")
