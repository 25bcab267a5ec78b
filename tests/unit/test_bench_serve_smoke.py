"""`python -m bench serve --quick` runs end to end and writes the figures RESULTS.md uses.

A smoke test on a tiny share: no timing is asserted (the machine is shared). What is
asserted could fail: the service became ready, every phase sent requests and got no
error, the server's CPU per request was read, the open loop crossed a midnight (one day
roll, requests of both days answered), the rate search stepped, the hot reload
under load moved the answers to a new checkpoint without a failed request, the batch was
answered row for row, memory was read from the serving process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_serve_quick_measures_every_phase(tmp_path):
    out, data = tmp_path / "results", tmp_path / "data"
    subprocess.run([sys.executable, "-m", "bench", "serve", "--quick", "--results-dir",
                    str(out), "--data-dir", str(data)], cwd=REPO, check=True,
                   capture_output=True, timeout=800)
    result = json.loads((out / "serve.json").read_text())
    assert result["benchmark"] == "serve" and result["quick"] is True
    assert result["start_to_ready_seconds"] > 0
    assert result["memory_ready_mib"]["VmRSS"] > 50
    for loop in [*result["closed_loop"], result["open_loop"], *result["rate_search"]["steps"]]:
        assert loop["requests"] > 0 and loop["errors"] == 0, loop
        assert 0 < loop["p50_ms"] <= loop["p99_ms"] <= loop["max_ms"]
        assert loop["server_cpu_ms_per_request"] > 0
    # the open loop crossed a midnight: one roll, requests of both days around it answered
    open_loop = result["open_loop"]
    assert open_loop["day_rolls"] == 1, open_loop
    around = open_loop["around_roll"]
    assert 0 < around["next_day_requests"] < open_loop["requests"], around
    assert around["before"]["requests"] > 0 and around["after"]["requests"] > 0, around
    reload = result["reload_under_load"]
    assert reload["requests"] > 0 and reload["failed"] == 0, reload
    assert reload["checkpoints_answered"] == 2, reload
    batch = result["batch_default_size"]
    assert batch["status"] == 200
    assert batch["answers"] == batch["transactions"] > 100
    assert result["context"]["machine"]["nproc"] >= 1


def test_loops_that_share_a_feed_each_get_their_part_of_the_day():
    from bench.serve_load import Feed

    feed = Feed([b"a", b"b", b"c", b"d", b"e"])
    feed.take()  # the warm-up's
    feed.share_left(2)
    first = list(iter(feed.take, None))
    feed.share_left(1)
    # THEN the first loop cannot use up the second's part, and time order is kept
    assert (first, list(iter(feed.take, None))) == ([b"b", b"c"], [b"d", b"e"])
