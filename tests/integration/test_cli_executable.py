"""The real `fraudpipe` executable, in a fresh process: the few tests about the process itself.

The entry point installed by `pip install -e .` answers --version; a command's exit status
and stderr reach the shell as they are; the progress bar on a real pseudo-terminal keeps
below the log lines. Everything else about the CLI runs in-process (`trainer.cli.main`) in
tests/unit/test_cli_errors.py and tests/unit/test_share_record.py.
"""

from __future__ import annotations

import datetime as dt
import os
import pty
import subprocess

import pytest

from tests.cli_runner import FRAUDPIPE, run_executable
from tests.shares import simulated_share

pytestmark = pytest.mark.integration

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(3)]


def test_version():
    code, out, _ = run_executable("--version")
    from importlib.metadata import version

    assert code == 0 and out.strip() == f"fraudpipe {version('fraudpipe')}"


def test_missing_storage_says_it_does_not_exist_through_the_real_executable(tmp_path):
    code, out, err = run_executable("train", "--storage", str(tmp_path / "no" / "such" / "dir"))
    assert code == 3
    assert "trained 0" not in out
    assert f"storage root {tmp_path / 'no' / 'such' / 'dir'} does not exist" in err
    assert "Traceback" not in err
    assert not (tmp_path / "no").exists()


def test_train_on_a_terminal_keeps_the_bar_below_the_log_lines(tmp_path):
    # GIVEN a share with three days and a real pseudo-terminal as stdout and stderr, and
    # the log lines asked for (-v)
    share = simulated_share(tmp_path, 3, customers=50, terminals=100)
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDPIPE_")}
    proc = subprocess.Popen([str(FRAUDPIPE), "train", "-v", "--storage", str(share.root),
                             "--learner", "sgd"], stdout=follower, stderr=follower,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=300) == 0
    os.close(leader)
    text = b"".join(chunks).decode().replace("\r\n", "\n")  # the tty's own newline
    # WHEN the terminal renders it (a carriage return goes back to the line's start)
    screen = [line.rsplit("\r", 1)[-1].replace("\x1b[K", "") for line in text.split("\n")]
    # THEN every log line stands alone, and the bar ended on its own line at 3/3
    for line in screen:
        assert not ("INFO" in line and "[#" in line), line
    assert sum(f"trained {D[0]}" in line and "INFO" in line for line in screen) == 1
    assert any(line.startswith("[") and "3/3" in line for line in screen)
    assert "\x1b[K" in text  # the bar was drawn and cleared, not left under a log line
