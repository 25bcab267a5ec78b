"""`python -m bench backfill --quick` writes the JSON RESULTS.md uses: the Prefect part on
the session's Prefect harness (tests/integration/conftest.py) instead of a server of its
own, the CLI part beside it, the same days trained both ways. No timing is asserted.
"""

from __future__ import annotations

import pytest

from tests.bench_runs import bench, load_results

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]


def test_backfill_runs_prefect_and_the_cli_on_the_same_days(tmp_path, prefect_harness):
    bench("backfill", "--results-dir", str(tmp_path), "--data-dir", str(tmp_path / "data"),
          "--prefect-api-url", prefect_harness)
    backfill = load_results(tmp_path, "backfill")
    assert backfill["prefect_local"]["days_trained"] == backfill["days"] == 3
    assert backfill["prefect_local"]["chain_length"] == 3
    assert backfill["cli"]["days_trained"] == 3
    assert 0 < backfill["prefect_local"]["sum_step_seconds"] < backfill["prefect_local"][
        "wall_seconds"]
