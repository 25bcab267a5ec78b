"""Start-up time of `fraudpipe --version`, `--help` and a usage error.

    python bench/cli_startup.py [--fraudpipe PATH]... [--repeat N]

Each case runs N times in a fresh process per executable (default: the `fraudpipe` beside
this interpreter); the table gives the median and the fastest wall time and the median CPU
time (user + system of the child, less sensitive to a busy machine than wall time). Give
`--fraudpipe` twice to compare two installs, e.g. another worktree's `.venv/bin/fraudpipe`
on older code. The target is under 0.5 s each; the test that keeps the heavy imports out
of the parser is tests/unit/test_cli_startup.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: (label, arguments) of each case.
CASES = (
    ("--version", ["--version"]),
    ("--help", ["--help"]),
    ("usage error (step without --storage)", ["step"]),
    ("step --help", ["step", "--help"]),
)


def run_once(executable: str, argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one `executable ARGV` run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDPIPE_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([executable, *argv], capture_output=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(executable: str, repeat: int) -> list[dict]:
    """One row per case: median and fastest wall time, median CPU time."""
    rows = []
    for label, argv in CASES:
        run_once(executable, argv)  # warm the page cache: the figures are start-up, not disk
        walls, cpus = zip(*(run_once(executable, argv) for _ in range(repeat)), strict=True)
        rows.append({"executable": executable, "case": label,
                     "wall_median_s": statistics.median(walls), "wall_min_s": min(walls),
                     "cpu_median_s": statistics.median(cpus)})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown table of every executable's cases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraudpipe", action="append", metavar="PATH",
                        help="a fraudpipe executable (repeatable; default: this venv's)")
    parser.add_argument("--repeat", type=int, default=5, metavar="N", help="runs per case")
    args = parser.parse_args(argv)
    executables = args.fraudpipe or [str(Path(sys.executable).with_name("fraudpipe"))]
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| fraudpipe | case | wall median s | wall min s | CPU median s |")
    print("|---|---|---|---|---|")
    for executable in executables:
        for row in measure(executable, args.repeat):
            print(f"| {row['executable']} | {row['case']} | {row['wall_median_s']:.3f} | "
                  f"{row['wall_min_s']:.3f} | {row['cpu_median_s']:.3f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
