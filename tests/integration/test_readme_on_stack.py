"""The README's blocks that need the `make up` stack run as written on the session's stack.

A block preceded by `<!-- readme-test: on the make-up stack: REASON -->` runs against the
session's `make up` stack (tests/make_up_stack.py: free ports, a temporary RUN_DIR; the
README's port 4280 becomes the stack's), from a scratch directory whose `.venv` is the
repository's, so what the block creates (`my-landing`) stays out of the repository. The
blocks run in one bash process, in order, in a fresh shell's environment
(tests/readme_blocks.py).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.readme_blocks import (
    BLOCKS,
    DONE,
    README_PREFECT_PORT,
    REPO,
    assert_block_ran,
    fresh_shell_env,
)

# The session's `make up` stack (tests/make_up_stack.py), after test_local_stack.py's run.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("make_up_stack")]

#: After the blocks, the README's landing example with the directory never created: what
#: `--watch` prints when the landing area is missing.
MISSING_LANDING = """
.venv/bin/prefect deployment run 'daily-pipeline/local' --param landing="$PWD/never-created" \\
  --watch > missing-landing.out 2>&1 || echo "missing landing: exit status $?"
"""


@pytest.fixture(scope="module")
def stack_run(make_up_stack, tmp_path_factory):
    """The on-stack blocks in one bash from a scratch directory, on the session's `make up`
    stack (tests/make_up_stack.py), then the missing-landing run. (proc, scratch, run_dir, ui)."""
    make_up_stack.check_up()
    tmp = tmp_path_factory.mktemp("readme-stack")
    scratch, home = tmp / "scratch", tmp / "home"
    scratch.mkdir()
    home.mkdir()
    (scratch / ".venv").symlink_to(REPO / ".venv")
    port = make_up_stack.prefect_port
    script = ["set -e"]
    for block in BLOCKS:
        if block.on_stack:
            text = block.text.replace(f"127.0.0.1:{README_PREFECT_PORT}", f"127.0.0.1:{port}")
            script += [f"# README.md line {block.line}", text,
                       f"echo '{DONE.format(block.index)}'"]
    script.append(MISSING_LANDING)
    env = fresh_shell_env(tmp) | {"HOME": str(home)}
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=scratch, env=env,
                          capture_output=True, text=True, timeout=900)
    return proc, scratch, make_up_stack.run_dir, make_up_stack.ui


@pytest.mark.parametrize("block", [pytest.param(b, id=f"line{b.line}")
                                   for b in BLOCKS if b.on_stack])
@pytest.mark.timeout(1200)  # the first on-stack block waits for the stack's runs
def test_readme_block_runs_as_written_on_the_stack(block, stack_run):
    assert_block_ran(block, stack_run[0])


@pytest.mark.timeout(1200)
def test_the_landing_example_runs_on_the_stack_and_a_missing_landing_says_why(stack_run):
    import httpx

    from trainer.share.layout import Share
    from trainer.share.lineage import verify

    proc, scratch, run_dir, ui = stack_run
    assert any(b.on_stack for b in BLOCKS)
    # THEN the landing example's run, watched to its end, completed and trained its two days
    assert "Flow run finished successfully in 'Completed'" in proc.stdout, (
        proc.stdout[-4000:] + proc.stderr[-4000:])
    assert sorted(p.name for p in (scratch / "my-landing").iterdir()) == [
        "2018-04-11.parquet", "2018-04-12.parquet"]
    trained = [e.date.isoformat() for e in verify(Share.at(run_dir / "share"))]
    assert trained[-2:] == ["2018-04-11", "2018-04-12"], trained
    # AND the team's review capacity went to the run as a parameter
    runs = httpx.post(f"{ui}/api/flow_runs/filter", json={}, timeout=30).json()
    assert any(r["parameters"].get("review_capacity") == 50 for r in runs)
    assert any(r["parameters"].get("landing") == str(scratch / "my-landing") for r in runs)
    # AND with the landing directory never created, --watch shows the cause as the run's
    # one error line, before the Failed state and before any traceback (Prefect's engine
    # logs one for every failed run, after it), and exits 1; the cause is the state message
    assert "missing landing: exit status 1" in proc.stdout, proc.stdout[-4000:]
    watched = (scratch / "missing-landing.out").read_text()
    unwrapped = " ".join(watched.split())  # the CLI wraps long lines at the terminal's width
    cause = f"landing '{scratch / 'never-created'}': no such directory"
    assert cause in unwrapped, watched
    first_failure = min(unwrapped.find(what) for what in ("prefect.flow-run.Failed", "Traceback")
                        if what in unwrapped)
    assert unwrapped.index(cause) < first_failure, watched
    [failed] = [r for r in runs if r["parameters"].get("landing") == str(scratch / "never-created")]
    state = httpx.get(f"{ui}/api/flow_runs/{failed['id']}", timeout=30).json()["state"]
    assert state["type"] == "FAILED" and state["message"].startswith(cause), state
