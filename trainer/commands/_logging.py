"""Where a command's log lines go: each message once on the terminal.

A command prints what it did (stdout) and its errors (stderr) itself. The domain's log
records say the same things in more detail, so on the terminal they would repeat each
message with a timestamp. By default only warnings the command does not report itself
reach the terminal, as one line (`fraudpipe CMD: warning: ...`). The log lines, with
timestamps, go to stderr with `-v` (info) or `-vv` (debug), and to the file of
`--log-file` (env FRAUDPIPE_LOG_FILE) whatever the verbosity. Long-running commands whose
log lines are their output (`worker`, `serve`) declare `logs_are_output` and log at info.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Log messages a command reports in its own output: the terminal leaves them out.
#: ingest and labels list every quarantined file with its reason and where it went.
REPORTED_BY_COMMANDS = ("quarantining ",)


class _OneLine(logging.Formatter):
    """`fraudpipe CMD: warning: message`, the form the command's own messages have."""

    def __init__(self, command: str) -> None:
        super().__init__()
        self.command = command

    def format(self, record: logging.LogRecord) -> str:
        return f"fraudpipe {self.command}: {record.levelname.lower()}: {record.getMessage()}"


def _not_reported(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(REPORTED_BY_COMMANDS)


def _verbosity_level(verbosity: int) -> int:
    return logging.DEBUG if verbosity >= 2 else logging.INFO


@contextlib.contextmanager
def command_logging(command: str, verbosity: int = 0, log_file: str | None = None,
                    logs_are_output: bool = False) -> Iterator[None]:
    """Route log records for one command run; the root logger is restored afterwards.

    Args:
        command: the sub-command's name, for the one-line warnings.
        verbosity: 0 warnings only, 1 info log lines, 2 debug log lines on stderr.
        log_file: append every log line (info; debug at verbosity 2) to this file.
        logs_are_output: the command's log lines are what it prints (at least info).
    """
    if logs_are_output:
        verbosity = max(verbosity, 1)
    terminal = logging.StreamHandler(sys.stderr)  # the stderr of now (tests redirect it)
    if verbosity:
        terminal.setLevel(_verbosity_level(verbosity))
        terminal.setFormatter(logging.Formatter(LOG_FORMAT))
    else:
        terminal.setLevel(logging.WARNING)
        terminal.setFormatter(_OneLine(command))
        terminal.addFilter(_not_reported)
    handlers: list[logging.Handler] = [terminal]
    if log_file:
        try:
            to_file = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            print(f"fraudpipe {command}: error: cannot write the log file {log_file}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(2) from exc
        to_file.setLevel(_verbosity_level(verbosity))
        to_file.setFormatter(logging.Formatter(LOG_FORMAT))
        handlers.append(to_file)
    root = logging.getLogger()
    saved_level = root.level
    root.setLevel(min(saved_level or logging.WARNING, *(h.level for h in handlers)))
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(saved_level)
