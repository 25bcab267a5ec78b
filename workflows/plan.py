"""The `plan` step: turn the `datasets` parameter into the chain's batches of days.

`plan` runs inside a pod as an Argo script template (its source is inlined into the
YAML), so it uses the standard library only and imports nothing from fraudpipe. It is a
plain function too, so tests call it directly (Hera's "call @script functions as plain
Python" habit).
"""

from __future__ import annotations

#: Where the pod writes the output parameters (an emptyDir: the root filesystem is read-only).
PLAN_DIR = "/tmp/plan"


def plan(datasets: str, days_per_step: str, out_dir: str) -> dict:
    """Validate the requested dates and write the plan as Argo output parameter files.

    Args:
        datasets: `queued`, a JSON list of ISO dates, or dates separated by commas/spaces.
        days_per_step: how many consecutive requested days one training pod trains.
        out_dir: directory receiving `mode` and `batches.json`.

    Returns:
        The plan: `mode` ("dates", "queued" or "empty"), `dates` (sorted, unique) and
        `batches` (objects with `dates` space-separated, `first` and `last`).

    Raises:
        SystemExit: with code 3 (a permanent error, never retried) for bad input.
    """
    import datetime
    import json
    import os
    import sys

    def fail(message: str) -> None:
        print(f"plan: error: {message}", file=sys.stderr)
        raise SystemExit(3)

    text = datasets.strip()
    try:
        size = int(str(days_per_step).strip())
    except ValueError:
        size = 0
    if size < 1:
        fail(f"parameter days-per-step: expected a positive integer, got {days_per_step!r}")
    if text.lower() == "queued":
        items: list = []
        mode = "queued"
    else:
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                fail(f"parameter datasets: not a JSON list ({exc})")
            if not isinstance(items, list):
                fail("parameter datasets: expected a JSON list of dates")
        else:
            items = text.replace(",", " ").split()
        mode = "dates" if items else "empty"
    days = set()
    for position, item in enumerate(items):
        try:
            days.add(datetime.date.fromisoformat(str(item).strip()))
        except ValueError:
            fail(f"parameter datasets, item {position}: expected a date YYYY-MM-DD, got {item!r}")
    dates = [day.isoformat() for day in sorted(days)]
    batches = [
        {"dates": " ".join(chunk), "first": chunk[0], "last": chunk[-1]}
        for chunk in (dates[start : start + size] for start in range(0, len(dates), size))
    ]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "mode"), "w") as handle:
        handle.write(mode)
    with open(os.path.join(out_dir, "batches.json"), "w") as handle:
        json.dump(batches, handle)
    result = {"mode": mode, "dates": dates, "batches": batches}
    print(json.dumps(result))
    return result


#: Environment variables carrying the script's inputs (input parameter -> variable). Argo
#: substitutes parameters into the text of a script's source, so a value pasted into a
#: Python literal could end the literal (a `'''` or a trailing backslash) or inject code;
#: an environment variable's value is only ever data.
PLAN_ENV = {"datasets": "FRAUDPIPE_PLAN_DATASETS", "days-per-step": "FRAUDPIPE_PLAN_DAYS_PER_STEP"}


def script_source() -> str:
    """The script template's source: this function plus a call reading Argo's inputs."""
    import inspect

    arguments = ", ".join(f"os.environ[{name!r}]" for name in PLAN_ENV.values())
    return (
        "from __future__ import annotations\n\nimport os\n\n"
        + inspect.getsource(plan)
        + f"\n\nplan({arguments}, {PLAN_DIR!r})\n"
    )
