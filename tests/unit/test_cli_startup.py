"""`fraudpipe --help`, `--version` and usage errors answer without loading the heavy stack.

Start-up time is decided by what gets imported: scikit-learn, SciPy and LightGBM cost
seconds, pandas and pyarrow most of a second. Checking which modules a fresh interpreter
has loaded after the parser answered is deterministic, where a wall-clock limit would
flake on a busy machine (the times themselves: `python -m bench cli-startup`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: Top-level packages the parser must not load: each costs a noticeable part of a second.
FORBIDDEN = ("sklearn", "scipy", "lightgbm", "pandas", "pyarrow", "numpy", "skops", "prefect",
             "hera", "redis", "pydantic", "matplotlib")

PROBE = """
import contextlib, io, json, sys
from trainer.cli import main
for argv in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    print(json.dumps({"code": code, "output": out.getvalue(),
                      "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def answers(*argvs: list[str]) -> list[dict]:
    """Exit code, output and loaded top-level packages after each `fraudpipe ARGV`, run one
    after the other in one fresh process (what is loaded adds up: a heavy import shows from
    the first command that made it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDPIPE_")}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs)],
                          capture_output=True, text=True, check=True, env=env)
    return [json.loads(line) for line in done.stdout.splitlines()]


def answer(*argv: str) -> dict:
    """Exit code, output and loaded top-level packages of `fraudpipe ARGV` in a fresh process."""
    [result] = answers(list(argv))
    return result


def commands() -> list[str]:
    from trainer.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("argv", [
    ("--version",),
    ("--help",),
    (),  # no command: usage error
    ("no-such-command",),
    ("step",),  # --storage missing
    ("step", "--storage", "/nowhere", "--date", "2018-02-30"),
    ("step", "--storage", "/nowhere", "--learner", "no-such-learner"),
    ("simulate", "--out", "x", "--format", "xlsx"),
    ("labels", "--storage", "/nowhere", "--genuine-after-days", "0"),
], ids=lambda argv: " ".join(argv) or "(none)")
def test_the_parser_answers_without_loading_the_heavy_stack(argv):
    # WHEN fraudpipe answers --help, --version or a usage error
    result = answer(*argv)
    # THEN it answered (0 for help and version, 2 for a usage error) ...
    assert result["code"] == (0 if argv and argv[0] in ("--help", "--version") else 2), result
    assert result["output"]
    # ... and loaded none of the heavy packages
    assert not set(FORBIDDEN) & set(result["loaded"]), result["loaded"]


def test_every_command_help_answers_without_loading_the_heavy_stack():
    names = commands()
    assert {"ingest", "step", "train", "simulate", "labels", "worker"} <= set(names)
    for name, result in zip(names, answers(*([name, "--help"] for name in names)), strict=True):
        assert result["code"] == 0 and name in result["output"], (name, result)
        assert not set(FORBIDDEN) & set(result["loaded"]), (name, result["loaded"])


def test_the_probe_sees_the_heavy_imports_of_a_command_that_runs(tmp_path):
    # The checks above could pass vacuously if the probe missed imports: a command that
    # does its work loads what it needs, and the probe reports it.
    result = answer("simulate", "--out", str(tmp_path), "--days", "1", "--customers", "5",
                    "--terminals", "5")
    assert result["code"] == 0, result
    assert {"numpy", "pandas"} <= set(result["loaded"])


def test_learner_names_are_the_registry_s():
    from trainer.learners import DEFAULT_LEARNER, LEARNER_NAMES
    from trainer.learners.registry import LEARNER_INPUTS, LEARNERS

    assert tuple(LEARNERS) == tuple(LEARNER_INPUTS) == LEARNER_NAMES
    assert DEFAULT_LEARNER in LEARNER_NAMES


def test_the_roles_the_cli_lists_are_canonical_columns():
    from trainer.data.roles import ROLES
    from trainer.data.schema import COLUMNS, LABEL

    assert set(ROLES.values()) <= set(COLUMNS) | {LABEL}
    assert ROLES["label"] == LABEL
