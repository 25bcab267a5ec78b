"""The README's shell commands run as written, from the repository root, in a fresh shell.

Every ```bash block of README.md is either run or skipped with its reason: a block that
needs a cluster or a running stack is preceded by the line
`<!-- readme-test: skip: REASON -->`, and shows up in the test report as a skipped
parameter with that reason (never a silent skip). The blocks that run share one bash
process, in order (a later block may use a variable an earlier one set), with no
virtualenv on PATH and no PREFECT_*/FRAUDPIPE_* variables, and TMPDIR pointing at the
test's own directory, so `mktemp -d` keeps the share out of the repository.

A block preceded by `<!-- readme-test: on the make-up stack: REASON -->` runs against the
session's `make up` stack (tests/make_up_stack.py: free ports, a temporary RUN_DIR; the
README's port 4280 becomes the stack's), from a scratch directory whose `.venv` is the
repository's, so what the block creates (`my-landing`) stays out of the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# The on-stack blocks share the session's `make up` stack (tests/make_up_stack.py).
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("make_up_stack")]

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SKIP = re.compile(r"<!-- readme-test: skip: (.+?) -->\s*$")
ON_STACK = re.compile(r"<!-- readme-test: on the make-up stack: (.+?) -->\s*$")
#: The Prefect port the README's stack blocks name (`make up`'s default PREFECT_PORT).
README_PREFECT_PORT = 4280
#: Commands that start long-lived services or need a cluster: a block holding one must carry
#: a skip marker, and is never run without it (the test would hang or reach out).
NEEDS_MORE = re.compile(
    r"^\s*(?:\S+/)?(?:make\s+(?:up|run|test|test-slow|bench|down|status)\b|kubectl\b|argo\b|"
    r"gcloud\b|docker\b|prefect\s+(?:server|worker|deploy|deployment|work-pool|block)\b|"
    r"prefect\s+--no-prompt\b)", re.M)
DONE = "@@readme-block {} exit 0"


@dataclass(frozen=True)
class Block:
    index: int
    line: int
    text: str
    skip: str | None
    on_stack: str | None = None


def bash_blocks(path: Path = README) -> list[Block]:
    """Every ```bash block with its line number and its skip reason (None: it runs)."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            body = []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            above = lines[start - 1].strip() if start else ""
            marker, stack = SKIP.match(above), ON_STACK.match(above)
            blocks.append(Block(len(blocks), start + 1, "\n".join(body) + "\n",
                                marker.group(1) if marker else None,
                                stack.group(1) if stack else None))
        i += 1
    return blocks


BLOCKS = bash_blocks()


def fresh_shell_env(tmp: Path) -> dict[str, str]:
    """What a new terminal has: no virtualenv, no fraudpipe or Prefect settings."""
    keep = {"HOME", "LANG", "LC_ALL", "USER", "LOGNAME", "SHELL", "TERM"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env["TMPDIR"] = str(tmp)
    return env


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
     for b in BLOCKS],
)
@pytest.mark.timeout(1200)  # the first on-stack block waits for `make up` and its runs
def test_readme_block_runs_as_written(block, request):
    proc = request.getfixturevalue("stack_run" if block.on_stack else "local_run")[0]
    assert DONE.format(block.index) in proc.stdout, (
        f"README.md block at line {block.line} failed (exit {proc.returncode}):\n"
        f"{block.text}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}")


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


# --- the blocks that need the stack `make up` keeps open ----------------------------------

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
