"""Run the `fraudpipe` command line in tests: in this process, or as the real executable.

`run_main` calls `trainer.cli.main` in the test's own process, with what a user sees
captured as the executable would print it: stdout, and stderr holding the command's
messages and the log records `main` routes to the terminal (warnings as one line by
default; timestamped log lines with `-v`). A usage error (argparse's SystemExit) becomes
its exit status. Starting a process costs seconds of
imports per call, so tests use this unless what they test is the process itself.

`run_executable` runs the installed `fraudpipe` script in a fresh process: for the few
tests about the entry point, a terminal, signals or fault points that kill or stop the
process (those live in tests/integration).

Both drop the caller's FRAUDPIPE_* variables (a developer's FRAUDPIPE_STORAGE must not
leak into a test); `env` sets some back on purpose.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FRAUDPIPE = Path(sys.executable).with_name("fraudpipe")


@dataclass(frozen=True)
class CliResult:
    """Exit status and output of one command; unpacks as (code, out, err)."""

    code: int
    out: str
    err: str

    def __iter__(self) -> Iterator[int | str]:
        return iter((self.code, self.out, self.err))


@contextlib.contextmanager
def _environment(extra: dict[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith("FRAUDPIPE_")]:
        del os.environ[key]
    os.environ.update(extra or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _exit_status(exc: SystemExit, err: io.StringIO) -> int:
    """The status the interpreter gives `exc`; a message is printed to stderr, as it does."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=err)
    return 1


def run_main(*args: object, env: dict[str, str] | None = None) -> CliResult:
    """`fraudpipe ARGS...` through `trainer.cli.main` in this process."""
    from trainer.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    # `main` binds its terminal handler to the stderr of the moment: the captured one.
    with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors, --help, sys.exit("why")
            code = _exit_status(exc, err)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_executable(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None,
                   timeout: float = 300) -> CliResult:
    """The installed `fraudpipe` executable in a fresh process."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDPIPE_")}
    environ.update(env or {})
    proc = subprocess.run([str(FRAUDPIPE), *map(str, args)], capture_output=True, text=True,
                          env=environ, cwd=cwd, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
