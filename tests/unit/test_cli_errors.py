"""Where people make mistakes, the CLI says so: run through `trainer.cli.main` in this process
(exit codes, stdout, stderr with the log lines). The real `fraudpipe` executable (entry point,
--version, a pseudo-terminal for the progress bar) is in tests/integration/test_cli_executable.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.cli_runner import run_main
from tests.shares import simulate_days, simulated_share
from trainer.backlog import train_all
from trainer.cli import BUILTIN, build_parser, main
from trainer.errors import NotAShareError
from trainer.share.layout import MARKER_NAME, Share, create_share, open_share

D = [dt.date(2018, 4, 1) + dt.timedelta(days=i) for i in range(10)]

#: Every command that must find an existing share, with the arguments it needs besides it.
SHARE_COMMANDS = {
    "train": [],
    "step": ["--dataset", "2018-04-01"],
    "lineage": [],
    "report": [],
    "evaluate": ["--checkpoint", "2018-04-01", "--test-start", "2018-04-02"],
    # the share is checked before Redis is reached: port 1 is never contacted
    "worker": ["--redis-url", "redis://127.0.0.1:1/0", "--burst"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Share:
    """Five small days ingested and trained (made with the library, not copied per test)."""
    share = simulated_share(tmp_path_factory.mktemp("trained"), 5)
    train_all(share)
    return share


def copy_of(share: Share, tmp_path: Path) -> Share:
    shutil.copytree(share.root, tmp_path / "copy")
    return Share.at(tmp_path / "copy")


# --- a share knows it is a share ---------------------------------------------------------

@pytest.mark.parametrize("command", sorted(SHARE_COMMANDS))
@pytest.mark.parametrize("kind", ["missing", "file", "empty dir", "unrelated dir"])
def test_every_command_refuses_a_path_that_is_not_a_share(tmp_path, command, kind, capsys):
    # GIVEN a storage path that is missing, a file, an empty directory (an unmounted mount
    # point) or a directory of something else
    root = tmp_path / "share"
    if kind == "file":
        root.write_text("not a directory")
    elif kind == "empty dir":
        root.mkdir()
    elif kind == "unrelated dir":
        (root / "photos").mkdir(parents=True)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    # WHEN a command other than ingest/init is pointed at it
    code = main([command, "--storage", str(root), *SHARE_COMMANDS[command]])
    # THEN it exits 3 (permanent: Argo and the worker never retry it), names the path and
    # what to check, and writes nothing
    err = capsys.readouterr().err
    assert code == 3, err
    assert str(root) in err
    assert "mount" in err and "typo" in err and "fraudpipe init" in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_a_file_as_storage_is_an_error_not_a_traceback(tmp_path):
    (tmp_path / "f").write_text("")
    code, _, err = run_main("lineage", "--storage", str(tmp_path / "f"))
    assert code == 3 and "is a file, not a directory" in err and "Traceback" not in err


def test_lineage_of_a_non_share_is_not_all_verified(tmp_path):
    code, out, err = run_main("lineage", "--storage", str(tmp_path))
    assert code == 3 and "all verified" not in out and "not a fraudpipe share" in err


def test_ingest_creates_a_share_and_says_so(tmp_path):
    simulate_days(tmp_path / "landing", 1, customers=50, terminals=100)
    root = tmp_path / "new" / "share"
    code, out, err = run_main("ingest", "--source", str(tmp_path / "landing"),
                             "--storage", str(root))
    assert code == 0, err
    assert f"created a new share at {root}" in err
    assert (root / MARKER_NAME).is_file()
    assert open_share(root).root == root
    # a second ingest finds the share and says nothing about creating it
    code, out, err = run_main("ingest", "--source", str(tmp_path / "landing"),
                             "--storage", str(root))
    assert code == 0 and "created" not in err and "unchanged" in out


def test_ingest_onto_a_file_is_refused(tmp_path):
    simulate_days(tmp_path / "landing", 1, customers=50, terminals=100)
    (tmp_path / "f").write_text("")
    code, _, err = run_main("ingest", "--source", str(tmp_path / "landing"),
                           "--storage", str(tmp_path / "f"))
    assert code == 3 and "is a file, not a directory" in err


def test_init_creates_once_and_then_leaves_the_share_alone(tmp_path, capsys):
    root = tmp_path / "share"
    assert main(["init", "--storage", str(root)]) == 0
    assert f"created a new share at {root}" in capsys.readouterr().out
    marker = (root / MARKER_NAME).read_bytes()
    assert main(["init", "--storage", str(root)]) == 0
    assert "is already a share" in capsys.readouterr().out
    assert (root / MARKER_NAME).read_bytes() == marker
    assert main(["lineage", "--storage", str(root)]) == 0


def test_a_share_from_before_the_marker_is_recognised_and_marked(trained, tmp_path, caplog):
    # GIVEN a share written by an older fraudpipe: lineage and manifest, no marker
    share = copy_of(trained, tmp_path)
    share.marker.unlink(missing_ok=True)  # the library's ingest_path writes none
    # WHEN any command opens it
    with caplog.at_level("INFO", logger="trainer.share.layout"):
        assert main(["lineage", "--storage", str(share.root)]) == 0
    # THEN it is recognised, the marker is written and a log line says so
    assert share.marker.is_file()
    assert "existing share recognised" in caplog.text


@pytest.mark.parametrize("command", ["lineage", "train", "step", "report"])
def test_checkpoints_without_lineage_are_an_error_never_a_fresh_start(trained, tmp_path,
                                                                      command, capsys):
    # GIVEN a trained share whose output/lineage.json was lost
    share = copy_of(trained, tmp_path)
    share.lineage.unlink()
    checkpoints = {p.name: p.read_bytes() for p in share.output_dir.glob("model_cpt_*")}
    marked = share.marker.exists()
    extra = ["--dataset", "2018-04-01"] if command == "step" else []
    # WHEN a command runs on it
    code = main([command, "--storage", str(share.root), *extra])
    # THEN it stops with exit 4 naming the file and what to do; no checkpoint is touched
    err = capsys.readouterr().err
    assert code == 4, err
    assert str(share.lineage) in err and "5 checkpoint(s)" in err and "Restore" in err
    assert {p.name: p.read_bytes() for p in share.output_dir.glob("model_cpt_*")} == checkpoints
    assert not share.lineage.exists() and share.marker.exists() == marked


def test_an_unmarked_share_with_only_checkpoints_is_refused_and_left_as_it_was(trained,
                                                                                tmp_path):
    # GIVEN only the checkpoints of an old share (no marker, lineage or manifest)
    share = copy_of(trained, tmp_path)
    share.marker.unlink(missing_ok=True)
    share.lineage.unlink()
    share.ingest_manifest.unlink()
    # WHEN a command opens it, THEN the lost lineage is the error and no marker is written
    code, _, err = run_main("train", "--storage", str(share.root))
    assert code == 4 and "lineage --repair" in err
    assert not share.marker.exists()


def test_the_check_is_one_function_the_worker_and_flows_can_call(tmp_path):
    with pytest.raises(NotAShareError, match="does not exist"):
        open_share(tmp_path / "missing")
    share, created = create_share(tmp_path / "s", "a flow")
    assert created and open_share(tmp_path / "s") == share


# --- empty shares say they are empty -----------------------------------------------------

def test_report_and_lineage_on_an_empty_share_say_it_is_empty(tmp_path, capsys):
    create_share(tmp_path, "test")
    assert main(["report", "--storage", str(tmp_path)]) == 0
    assert "the report is empty: no day trained" in capsys.readouterr().out
    assert main(["lineage", "--storage", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no checkpoint yet" in out and "all verified" not in out
    assert main(["train", "--storage", str(tmp_path)]) == 0
    assert "nothing to train: no dataset ingested" in capsys.readouterr().out


def test_train_with_nothing_new_says_why(trained, capsys):
    assert main(["train", "--storage", str(trained.root)]) == 0
    out = capsys.readouterr().out
    assert "nothing to train: 5 ingested day(s)" in out and "2018-04-05" in out


# --- --help, --version, dates ------------------------------------------------------------

def _all_parsers(parser: argparse.ArgumentParser, path: str = "fraudpipe"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_parsers(sub, f"{path} {name}")


def test_every_default_and_choice_is_in_help(monkeypatch):
    # the trainer's own commands; plug-ins (render, validate) document theirs in words
    monkeypatch.delenv("FRAUDPIPE_STORAGE", raising=False)
    monkeypatch.delenv("FRAUDPIPE_REDIS_URL", raising=False)
    missing = []
    for path, parser in _all_parsers(build_parser()):
        if path.split()[1:2] and path.split()[1] not in BUILTIN:
            continue
        help_text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if action.help in (None, argparse.SUPPRESS) or not action.option_strings:
                continue
            if action.default not in (None, False, argparse.SUPPRESS) and not isinstance(
                    action, argparse._VersionAction | argparse._HelpAction):
                shown = {str(action.default), f"{action.default:g}"
                         if isinstance(action.default, float) else str(action.default)}
                if not any(f"default {s}" in help_text for s in shown):
                    missing.append(f"{path} {action.option_strings[0]}: default {shown}")
            for choice in action.choices or []:
                if str(choice) not in help_text:
                    missing.append(f"{path} {action.option_strings[0]}: choice {choice}")
    assert missing == []


def test_learner_help_names_the_default_and_the_choices(capsys):
    from trainer.learners import DEFAULT_LEARNER
    from trainer.learners.registry import LEARNERS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "trainer.model" not in out
    assert f"(default {DEFAULT_LEARNER})" in out
    assert all(name in out for name in LEARNERS)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--storage", "x", "--learner", "nope"])
    assert exc.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "why"), [
    ("2018-04-31", "April 2018 has 30 days"),
    ("2018-02-29", "February 2018 has 28 days"),
    ("2018-13-01", "there is no month 13"),
    ("2018-04-00", "April 2018 has 30 days"),
    ("18-4-1", "expected YYYY-MM-DD"),
])
def test_a_date_that_is_out_of_range_says_why(text, why, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["step", "--storage", "x", "--dataset", text])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and why in err
    if why != "expected YYYY-MM-DD":
        assert "expected YYYY-MM-DD" not in err  # it has the form; the message says so


def test_simulate_start_is_checked_as_a_date(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--out", str(tmp_path), "--start", "2018-04-31"])
    assert exc.value.code == 2 and "April 2018 has 30 days" in capsys.readouterr().err


# --- evaluate ----------------------------------------------------------------------------

def test_evaluate_names_the_window_and_the_missing_days(trained, capsys):
    code = main(["evaluate", "--storage", str(trained.root), "--checkpoint", "2018-04-03",
                 "--test-start", "2018-04-04"])
    err = capsys.readouterr().err
    assert code == 3
    assert "the test window is 7 day(s) (the default), 2018-04-04 to 2018-04-10" in err
    assert "2018-04-06, 2018-04-07, 2018-04-08, 2018-04-09, 2018-04-10" in err
    assert "2018-04-04," not in err and "2018-04-05," not in err
    assert "--test-days" in err


def test_evaluate_within_the_ingested_days_works(trained, capsys):
    code = main(["evaluate", "--storage", str(trained.root), "--checkpoint", "2018-04-03",
                 "--test-start", "2018-04-04", "--test-days", "2", "--json"])
    assert code == 0 and '"auc_roc"' in capsys.readouterr().out


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--test-days", "0"], 2, "0 is not at least 1"),
    (["--test-start", "2018-04-02"], 3, "must come after"),
])
def test_evaluate_bad_split_is_an_error_not_a_traceback(trained, args, code, message):
    base = {"--checkpoint": "2018-04-03", "--test-start": "2018-04-04", "--test-days": "2"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for kv in base.items() for x in kv]
    got, _, err = run_main("evaluate", "--storage", str(trained.root), *flat)
    assert got == code and message in err and "Traceback" not in err


# --- train's progress and the log lines --------------------------------------------------

def _share_with_days(tmp_path: Path, days: int) -> Share:
    return simulated_share(tmp_path, days, customers=50, terminals=100)


def test_train_without_a_terminal_prints_one_line_per_day_and_no_log_lines(tmp_path):
    share = _share_with_days(tmp_path, 3)
    code, out, err = run_main("train", "--storage", str(share.root), "--learner", "sgd")
    assert code == 0, err
    assert err == ""  # no timestamped log line repeats what stdout says
    assert "\r" not in out and "[#" not in out  # no bar redrawn into a log file
    for i, day in enumerate(D[:3], start=1):
        assert sum(line.startswith(f"[{i}/3] {day}: trained in ") for line in out.splitlines()) == 1
    assert "trained 3 day(s)" in out


def test_train_with_verbose_writes_the_log_lines_instead(tmp_path):
    share = _share_with_days(tmp_path, 3)
    code, out, err = run_main("train", "--storage", str(share.root), "--learner", "sgd", "-v")
    assert code == 0, err
    lines = err.splitlines()
    for day in D[:3]:
        assert sum(f"INFO trainer.step: trained {day}" in line for line in lines) == 1
        assert f"{day}: trained in" not in out
    assert "trained 3 day(s)" in out


def test_a_message_is_printed_once_without_a_log_line_repeating_it(tmp_path):
    # GIVEN a share whose days arrived unlabelled, nothing trained
    landing = tmp_path / "landing"
    simulate_days(landing, 2, customers=50, terminals=100)
    for path in landing.glob("*.parquet"):  # the labels are not there yet
        pd.read_parquet(path).drop(columns=["TX_FRAUD", "TX_FRAUD_SCENARIO"]).to_parquet(path)
    assert main(["ingest", "--source", str(landing), "--storage", str(tmp_path / "s")]) == 0
    # WHEN score finds no model to score with, and ingest finds nothing new
    code, out, err = run_main("score", "--storage", tmp_path / "s")
    again = run_main("ingest", "--source", landing, "--storage", tmp_path / "s")
    # THEN each says so once, and no log line repeats it on stderr
    assert code == 0 and again.code == 0, err + again.err
    assert (out + err).count("no head model yet") == 1, out + err
    assert err == "" and again.err == ""
    assert "0 ingested, 2 unchanged" in again.out


def test_the_log_file_keeps_the_log_lines_the_terminal_leaves_out(tmp_path):
    share = _share_with_days(tmp_path, 2)
    log_file = tmp_path / "fraudpipe.log"
    code, out, err = run_main("train", "--storage", share.root, "--learner", "sgd",
                              "--log-file", log_file)
    assert code == 0 and err == "", err
    logged = log_file.read_text().splitlines()
    for day in D[:2]:
        assert sum(f" INFO trainer.step: trained {day} in " in line for line in logged) == 1
        assert f"trained {day} in " not in out  # the terminal's line for it is its own


def test_a_log_file_that_cannot_be_written_is_a_usage_error(tmp_path):
    code, _, err = run_main("--log-file", tmp_path / "no" / "such" / "dir.log", "lineage",
                            "--storage", tmp_path)
    assert code == 2
    assert f"cannot write the log file {tmp_path / 'no' / 'such' / 'dir.log'}" in err


# --- quarantine --------------------------------------------------------------------------

def test_each_quarantined_file_is_reported_once_with_where_it_went(tmp_path):
    landing = tmp_path / "landing"
    simulate_days(landing, 1, customers=50, terminals=100)
    (landing / "2018-04-02.csv").write_text("not,a,dataset\n1,2,3\n")
    code, out, err = run_main("ingest", "--source", str(landing),
                             "--storage", str(tmp_path / "share"))
    assert code == 0, err
    both = out + err
    assert both.count(str(landing / "2018-04-02.csv")) == 1, both
    [destination] = (tmp_path / "share" / "datasets" / "quarantine").glob("*-2018-04-02.csv")
    assert f"{destination}" in out
    assert f"{destination}.reason.txt" in out
    assert (landing / "2018-04-02.csv").is_file()  # the source stays in place





def test_an_old_share_whose_marker_cannot_be_written_still_opens(trained, tmp_path, caplog):
    # GIVEN an old share where the marker cannot be written (a directory holds its name:
    # the same OSError a read-only mount gives, and root cannot bypass it)
    share = copy_of(trained, tmp_path)
    share.marker.unlink(missing_ok=True)
    share.marker.mkdir()
    # WHEN it is opened, THEN it is still the share, with a warning instead of a traceback
    with caplog.at_level("WARNING", logger="trainer.share.layout"):
        assert open_share(share.root) == share
    assert "could not be written" in caplog.text
