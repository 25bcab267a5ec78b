"""Share-record cases that need more than one process or a real file system.

A `fraudpipe step` held at its `before_commit` fault point in its own process (the real
executable, stopped with SIGSTOP) while the test changes the share; a share on a small
tmpfs that fills up; a TLS URL against the session's plain redis-server. The other cases
run in-process in tests/unit/test_share_record.py.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.chaos.harness import is_stopped, wait_until
from tests.cli_runner import FRAUDPIPE, run_executable
from tests.share_cases import D, fraudpipe, make_landing, make_other_landing, share_with
from trainer.data.ingest import read_manifest
from trainer.faults import PAUSED
from trainer.share.files import sha256_file
from trainer.share.layout import Share
from trainer.share.lineage import Lineage, verify

pytestmark = pytest.mark.integration


def paused_step(root: Path, day: dt.date) -> subprocess.Popen[str]:
    """`fraudpipe step` (the real executable) held by SIGSTOP at its `before_commit` point."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDPIPE_")}
    env["FRAUDPIPE_FAULT"] = "before_commit:pause"
    proc = subprocess.Popen([str(FRAUDPIPE), "step", "--storage", str(root), "--dataset",
                             day.isoformat()], stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:  # blocks until the step says it pauses
        if PAUSED.format(point="before_commit") in line:
            # the line comes just before the stop: wait for the stop itself, so the test's
            # SIGCONT cannot arrive first and leave the step stopped for good
            wait_until(lambda: is_stopped(proc.pid), 60, interval=0.005,
                       what="the step to stop at before_commit")
            return proc
    raise AssertionError(f"step exited ({proc.wait()}) before its commit")


def resume(proc: subprocess.Popen[str]) -> tuple[int, str]:
    os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """Eight small simulated days (seed 1) in a landing directory."""
    return make_landing(tmp_path_factory.mktemp("landing"))


@pytest.fixture(scope="module")
def other_landing(tmp_path_factory, landing) -> Path:
    """The same eight days with other amounts: same dates and ids, other content."""
    return make_other_landing(landing, tmp_path_factory.mktemp("other"))


# --- case 1: an ingest cannot replace a day while it trains -----------------------------

def test_ingest_cannot_replace_the_day_a_step_is_training(tmp_path, landing, other_landing):
    root = share_with(tmp_path, landing, D[:3])
    share_with(tmp_path, landing, D[3:4], train=False)
    # GIVEN a step of day 4 held just before its commit
    step = paused_step(root, D[3])
    try:
        # WHEN another version of day 4 is ingested meanwhile
        code, out, err = fraudpipe("ingest", "--source", other_landing / f"{D[3]}.parquet",
                                   "--storage", root)
    finally:
        step_code, step_err = resume(step)
    # THEN the ingest refuses it (the file stays), and the step commits what it trained on
    assert "being trained right now" in out and "[replaced]" not in out, out + err
    assert step_code == 0, step_err
    share = Share.at(root)
    entry = Lineage.load(share).entry_for(D[3])
    assert entry is not None
    on_disk = sha256_file(share.training_dataset(D[3]))
    assert entry.dataset_sha256 == on_disk == read_manifest(share)[str(D[3])]["dataset_sha256"]
    # AND once trained, the other content is refused with the replay that would be needed
    code, out, _ = fraudpipe("ingest", "--source", other_landing / f"{D[3]}.parquet",
                             "--storage", root)
    assert "already trained" in out
    assert f"fraudpipe replay --from {D[2]} --rewind-only --storage {share.root}" in out
    assert sha256_file(share.training_dataset(D[3])) == on_disk


def test_a_step_whose_dataset_changed_under_it_commits_nothing(tmp_path, landing,
                                                                  other_landing):
    root = share_with(tmp_path, landing, D[:3])
    share_with(tmp_path, landing, D[3:4], train=False)
    share = Share.at(root)
    head = Lineage.load(share).head
    # GIVEN a step of day 4 held before its commit, and its file replaced behind fraudpipe's
    # back (a copy by hand: no lock is asked for)
    step = paused_step(root, D[3])
    try:
        shutil.copy(other_landing / f"{D[3]}.parquet", share.training_dataset(D[3]))
    finally:
        code, err = resume(step)
    # THEN the step re-checks the hash under the lineage lock: exit 5 (a retry helps)
    assert code == 5, err
    assert "changed while" in err and str(share.training_dataset(D[3])) in err
    assert Lineage.load(share).head == head
    # AND the retry stops too, naming the change and the fix (ingest it properly) ...
    code, _, err = fraudpipe("step", "--storage", root, "--dataset", D[3])
    assert code == 3 and "the ingest manifest records" in err, err
    code, _, err = fraudpipe("ingest", "--source", other_landing / f"{D[3]}.parquet",
                             "--storage", root)
    assert code == 0, err
    # ... after which the step records the content it really trained on
    code, _, err = fraudpipe("step", "--storage", root, "--dataset", D[3])
    assert code == 0, err
    entry = Lineage.load(share).entry_for(D[3])
    assert entry.dataset_sha256 == sha256_file(share.training_dataset(D[3]))


def test_a_full_share_is_retryable_and_names_the_share(tmp_path, landing):
    root = share_with(tmp_path, landing, D[:2], train=False)
    # GIVEN the share on a small file system (tmpfs), filled up
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)]).returncode:
        pytest.skip("needs a tmpfs mount (root)")
    try:
        shutil.copytree(root, mount / "share")
        filler = mount / "filler"
        with open(filler, "wb", buffering=0) as out:
            try:
                while True:
                    out.write(b"\0" * 4096)
            except OSError:
                pass
        # WHEN training needs to write
        code, _, err = run_executable("train", "--storage", mount / "share")
        # THEN exit 8 (retryable), naming the share, no traceback, nothing published
        assert code == 8, err
        assert f"the share {mount / 'share'}" in err and "Traceback" not in err
        filler.unlink()
        # AND with space back, the same command completes and the chain verifies
        code, _, err = fraudpipe("train", "--storage", mount / "share")
        assert code == 0, err
        assert [e.date for e in verify(Share.at(mount / "share"))] == D[:2]
    finally:
        subprocess.run(["umount", str(mount)], check=True)




def test_a_rediss_url_against_plain_redis_fails_in_seconds(redis_server):
    import time

    from trainer.errors import QueueConnectionError
    from trainer.queue.settings import RedisSettings

    url = redis_server.url_for_db(0).replace("redis://", "rediss://")
    started = time.monotonic()
    with pytest.raises(QueueConnectionError, match="TLS|timed out"):
        RedisSettings.from_url(url).client()
    # A guard against the 115 s hang of redis-py's retries, not a speed target.
    assert time.monotonic() - started < 60
