"""The end of `make run`: where the results are, and the UI's links only while it is up."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from stack.embedded import _print_results
from stack.rundir import RunDirectory
from trainer.share.layout import create_share

UI = "http://127.0.0.1:4281"


def _results(tmp_path, capsys, ui_stays: bool) -> str:
    run_dir = RunDirectory(tmp_path)
    create_share(run_dir.share, "test")
    _print_results(run_dir, UI, SimpleNamespace(id=uuid.uuid4()), ui_stays=ui_stays)
    return capsys.readouterr().out


def test_a_stopped_server_gets_no_links(tmp_path, capsys):
    # GIVEN a run whose own Prefect server stopped with it
    out = _results(tmp_path, capsys, ui_stays=False)
    # THEN the results say the UI is gone and how to keep one, and link nothing there
    assert UI not in out and "/runs/flow-run/" not in out
    assert "Prefect UI:   stopped with this run's services" in out
    assert "make up" in out


def test_a_server_that_stays_up_gets_the_runs_link(tmp_path, capsys):
    out = _results(tmp_path, capsys, ui_stays=True)
    assert f"Prefect UI:   {UI}\n" in out and f"this run:     {UI}/runs/flow-run/" in out
