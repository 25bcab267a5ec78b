"""A progress line for `fraudpipe train` that log lines never run into.

On a terminal the bar is the last line of stderr: a log record (with `-v`) clears it,
prints, and the bar is drawn again below. Anywhere else (a pipe, a CI log, a pod) no bar
is drawn: one line per trained day on stdout is the progress (`ProgressLines`), or with
`-v` the step's own log lines ("trained <day> in <s>").
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

from trainer.step import StepResult

_CLEAR_LINE = "\r\x1b[K"


class ProgressBar:
    """`train_all`'s `on_step` callback drawing one line on a terminal."""

    width = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.text = ""

    def __call__(self, done: int, total: int, result: StepResult) -> None:
        filled = int(self.width * done / max(total, 1))
        auc = (result.metrics.get("prequential") or {}).get("auc_roc")
        auc_text = f" ROC AUC before training {auc:.3f}" if auc is not None else ""
        self.text = (f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
                     f"{result.date} {result.seconds:.2f}s{auc_text}")
        self.draw()

    def draw(self) -> None:
        if self.text:
            self.stream.write(_CLEAR_LINE + self.text)
            self.stream.flush()

    def clear(self) -> None:
        if self.text:
            self.stream.write(_CLEAR_LINE)
            self.stream.flush()

    def finish(self) -> None:
        if self.text:
            self.stream.write("\n")
            self.stream.flush()
            self.text = ""


class ProgressLines:
    """`train_all`'s `on_step` callback printing one line per day (no terminal to redraw)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, done: int, total: int, result: StepResult) -> None:
        sha = (result.checkpoint_sha256 or "")[:12]
        what = (f"trained in {result.seconds:.2f}s, checkpoint {sha}"
                if result.status == "trained" else result.status)
        print(f"[{done}/{total}] {result.date}: {what}", file=self.stream, flush=True)


class _BarAwareHandler(logging.Handler):
    """Wraps a stderr handler: clear the bar, emit the record, draw the bar again."""

    def __init__(self, inner: logging.Handler, bar: ProgressBar) -> None:
        super().__init__(inner.level)
        self.inner, self.bar = inner, bar

    def emit(self, record: logging.LogRecord) -> None:
        self.bar.clear()
        self.inner.handle(record)
        self.bar.draw()


@contextlib.contextmanager
def progress(stream: TextIO | None = None) -> Iterator[ProgressBar | None]:
    """A `ProgressBar` on a terminal (log handlers rerouted around it), else None."""
    stream = stream or sys.stderr
    if not stream.isatty():
        yield None
        return
    bar = ProgressBar(stream)
    root = logging.getLogger()
    originals = list(root.handlers)
    root.handlers = [_BarAwareHandler(h, bar) for h in originals]
    try:
        yield bar
    finally:
        root.handlers = originals
        bar.finish()
