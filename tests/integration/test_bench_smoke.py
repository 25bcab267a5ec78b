"""Each benchmark in its tiniest `--quick` form writes JSON with the fields RESULTS.md uses.

No timing is asserted: the machine is shared. What is asserted could fail: the step was a
warm start that trained the day, every case ran, figures are positive, the backfill
trained every day both ways, the model's arithmetic holds. The backfill's smoke run is in
test_bench_backfill_smoke.py, with the tests that share the Prefect harness.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench_runs import bench, load_results
from tests.reference import reference_dir

REPO = Path(__file__).resolve().parents[2]

# Four benchmarks set up the first test: generous on a busy machine (a quiet one needs ~1 min).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench-results")
    data = tmp_path_factory.mktemp("bench-data")
    for name in ("step", "history", "queue", "argo"):
        bench(name, "--results-dir", str(out), "--data-dir", str(data))
    return out


def test_step_measures_fraudpipe_the_sample_and_the_floor(results):
    step = load_results(results, "step")
    (size,) = step["sizes"]
    assert size["transactions"] > 1000 and size["history_rows"] > size["transactions"]
    for case in ("fraudpipe", "fraudpipe_raw_history", "sample", "floor", "read_history"):
        figures = size[case]
        assert figures["median_seconds"] > 0 and figures["tx_per_s"] > 0
        assert figures["median_peak_rss_mib"] >= figures["import_rss_mib"] > 10
        assert len(figures["runs"]) == 1
    assert size["fraudpipe_over_floor"] > 0
    # the carried state reads D and its boundary days, the raw path all 38 days
    assert size["days_read"]["fraudpipe"] < size["days_read"]["fraudpipe_raw_history"]
    assert 0 < size["bytes_read"]["fraudpipe"] < size["bytes_read"]["fraudpipe_raw_history"]
    assert size["state"]["bytes_per_entity"] > 0 and size["state"]["rebuilt"] is None


def test_history_measures_each_day_on_a_growing_chain(results):
    history = load_results(results, "history")
    days = history["days"]
    assert [d["day_index"] for d in days] == [2, 6]
    assert [d["chain_length_before"] for d in days] == [2, 6]
    assert days[1]["history_rows"] > days[0]["history_rows"]
    # Day 2 reads itself and day 1; day 6 also reads nothing older than its boundary days.
    assert [d["days_read"] for d in days] == [2, 2] and days[1]["bytes_read"] > 0
    assert history["last_over_first_seconds"] > 0 and history["last_over_first_peak_rss"] > 0


def test_queue_reuses_queue_throughput_for_both_queues(results):
    rows = load_results(results, "queue")["rows"]
    queues = {(r["queue"], r["clients"]) for r in rows}
    assert {("sample", 1), ("sample", 4), ("fraudpipe", 1), ("fraudpipe", 4)} <= queues
    assert all(r["lease_complete_per_s"] > 0 for r in rows)


def test_argo_estimate_models_1_7_30_days_per_step(results):
    argo = load_results(results, "argo")
    rows = argo["rows"]
    assert sorted({r["days_per_step"] for r in rows}) == [1, 7, 30]
    one, thirty = (next(r for r in rows if r["days_per_step"] == k) for k in (1, 30))
    assert one["training_pods"] == 183 and thirty["training_pods"] == 7
    assert one["wall_seconds"] > thirty["wall_seconds"] > 183 * thirty["step_seconds"]


def test_sample_logic_reproduces_the_published_accuracies(tmp_path):
    # docs/facts.md#the-gke-sample: 0.99811 on training data and 0.99772 on the test day after
    # 2018-04-04, the first dataset the sample trains (newest first).
    from bench.sample_logic import train_dataset

    reference = reference_dir() / "gke-sample"
    if not reference.is_dir():
        pytest.skip(f"{reference} is not available on this machine")
    result = train_dataset(reference / "datasets" / "training" / "2018-04-04.pkl",
                           reference / "datasets" / "testing" / "test_dataset.pkl",
                           tmp_path, None)
    assert round(result["train_accuracy"], 5) == 0.99811
    assert round(result["test_accuracy"], 5) == 0.99772
    assert "Training dataset: 2018-04-04.pkl" in (tmp_path / "report.txt").read_text()


def test_history_plot_draws_every_run_it_is_given(results: Path, tmp_path: Path):
    from bench.plot import draw_history

    out = draw_history([("state", results / "history.json"),
                        ("raw", results / "history.json")], tmp_path / "chain.png")
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and out.stat().st_size > 10_000


def test_step_compare_runs_each_case_on_the_same_day_and_plots_it(tmp_path: Path):
    # two learners of the same code stand for old and new: each trains its own head, then
    # the measured day, and both lines reach the size plot
    out, data = tmp_path / "out", tmp_path / "data"
    done = subprocess.run([sys.executable, "-m", "bench.step_compare", "--sizes", "2k",
                           "--repeats", "1", "--case", f"full={REPO}:lgbm_mlp_profiles",
                           "--case", f"sampled={REPO}:lgbm_mlp_profiles_sampled",
                           "--data-dir", str(data), "--results-dir", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    compared = json.loads((out / "step_compare.json").read_text())
    assert compared["cases"] == ["full", "sampled"]
    size = compared["sizes"][0]
    assert size["transactions"] > 1_000
    for name, learner in (("full", "lgbm_mlp_profiles"), ("sampled", "lgbm_mlp_profiles_sampled")):
        assert size[name]["learner"] == learner
        assert size[name]["median_cpu_seconds"] > 0 and size[name]["median_peak_rss_mib"] > 0
    from bench.plot import draw

    step_json = tmp_path / "step.json"
    step_json.write_text(json.dumps({"sizes": [
        {"transactions": size["transactions"], "learner": "x",
         "fraudpipe": {k: size["full"][k] for k in ("median_seconds", "median_cpu_seconds")}}]}))
    png = draw(step_json, tmp_path / "size.png", out / "step_compare.json")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
