"""The README's shell commands run as written, from the repository root, in a fresh shell.

Every ```bash block of README.md is either run or skipped with its reason: a block that
needs a cluster or a running stack is preceded by the line
`<!-- readme-test: skip: REASON -->`, and shows up in the test report as a skipped
parameter with that reason (never a silent skip). The blocks that run share one bash
process, in order (a later block may use a variable an earlier one set), with no
virtualenv on PATH and no PREFECT_*/FRAUDPIPE_* variables, and TMPDIR pointing at the
test's own directory, so `mktemp -d` keeps the share out of the repository.

A block preceded by `<!-- readme-test: on the make-up stack: REASON -->` runs against the
session's `make up` stack: tests/integration/test_readme_on_stack.py, in the stack's xdist
unit; the blocks here need no stack and run beside it. tests/readme_blocks.py reads them.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.readme_blocks import (
    BLOCKS,
    DONE,
    NEEDS_MORE,
    README,
    REPO,
    assert_block_ran,
    fresh_shell_env,
)

# Not in the make-up stack's xdist unit: these blocks need no stack, so they run beside it.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """Run every block that is not skipped, in order, in one bash; its output and status."""
    tmp = tmp_path_factory.mktemp("readme")
    script = ["set -e"]
    for block in BLOCKS:
        if block.skip is None and block.on_stack is None and not NEEDS_MORE.search(block.text):
            script += [f"# README.md line {block.line}", block.text,
                       f"echo '{DONE.format(block.index)}'"]
    before = _git_status()
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=REPO, env=fresh_shell_env(tmp),
                          capture_output=True, text=True, timeout=900)
    after = _git_status()
    return proc, tmp, before, after


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                          capture_output=True, text=True).stdout


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=f"line{b.line}",
                  marks=[pytest.mark.skip(reason=f"README.md line {b.line}: {b.skip}")]
                  if b.skip else [])
     for b in BLOCKS if not b.on_stack],
)
@pytest.mark.timeout(1200)
def test_readme_block_runs_as_written(block, local_run):
    assert_block_ran(block, local_run[0])


def test_the_runnable_blocks_do_what_the_readme_says(local_run):
    proc, tmp, before, after = local_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    scratches = [p for p in tmp.iterdir() if p.is_dir()]
    [scratch] = [p for p in scratches if not (p / "export").exists()]  # the walk-through's $W
    [bank] = [p for p in scratches if (p / "export").exists()]  # Your own data's $B
    share = scratch / "share"
    # the sample-shaped pickles were ingested, four days trained, the test day scored
    assert (share / "fraudpipe-share.json").is_file()
    report = (share / "output" / "report.txt").read_text()
    assert report.count("Training dataset: datasets/training/") == 4
    assert "Testing dataset: none ingested" not in report
    assert "4 checkpoint(s), all verified" in proc.stdout
    # the mistakes are errors with their exit status, naming what is wrong
    assert f"{scratch}/shaer does not exist" in proc.stderr
    assert "the test window is 7 day(s) (the default)" in proc.stderr
    assert proc.stdout.count("exit status 3") == 2
    # the bank export arrived unlabelled; its first three days were completed by the 7-day
    # rule and trained, the seven others scored on arrival by the head (every day but the
    # first, which no model preceded)
    arrived = sorted(p.stem for p in (bank / "share/datasets/arrived").glob("*.parquet"))
    assert len(arrived) == 10 and arrived[0] == "2018-04-25"
    trained = sorted(p.stem for p in (bank / "share/datasets/training").glob("*.parquet"))
    assert trained == arrived[:3]
    scored = sorted(p.stem for p in (bank / "share/output/scores").glob("*.parquet"))
    assert scored == arrived[1:]
    assert "card card-" in proc.stdout and "awaiting labels" in proc.stdout
    # nothing was written into the repository
    assert after == before


def test_every_block_runs_or_says_what_it_needs():
    skipped = [b for b in BLOCKS if b.skip]
    assert any(b.skip is None for b in BLOCKS)
    unmarked = [f"line {b.line}" for b in BLOCKS
                if b.skip is None and b.on_stack is None and NEEDS_MORE.search(b.text)]
    assert unmarked == [], (
        "these README blocks need a service or a cluster: put "
        "`<!-- readme-test: skip: needs ... -->` on the line before the ```bash")
    for block in skipped:
        assert re.search(r"needs|run them", block.skip), block
    # nothing outside the repository, and the fresh shell has no bare `fraudpipe`/`prefect`
    for block in BLOCKS:
        assert "../shared" not in block.text and "/work/shared" not in block.text
        if block.skip is None:
            for line in block.text.splitlines():
                assert not re.match(r"\s*(fraudpipe|prefect|python)\b", line), line


def test_no_doc_refers_outside_the_repository():
    for path in (README, REPO / "deployments" / "README.md"):
        text = path.read_text()
        assert "../shared" not in text and "/work/shared" not in text, path
        assert "FACTS section" not in text, path
