"""How `make test` shares tests between its pytest-xdist workers (`-n 3 --dist loadgroup`).

A unit of work goes to one worker: every test of a module (its module-scoped fixtures are
then set up once, as with `--dist loadfile`), and across modules one unit per shared server:

- every module that uses `prefect_harness` (tests/integration/conftest.py): one harness
  server for all of them, not one per worker;
- modules that name a group with `pytest.mark.xdist_group("NAME")` (the deployed
  pipeline's two modules share tests/prefect_server.py's servers).

xdist's own loadgroup reads the markers on the workers and renames each test's node id,
which pytest 9 ignores (the id moved from `_nodeid` to `_id`), so the controller decides
here from the module's source instead. Units go out in collection order (integration
tests, the long ones, first), not by test count, so that no long unit starts last.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

GROUP_MARK = re.compile(r"""xdist_group\(\s*["']([^"']+)["']""")
HARNESS = re.compile(r"\bprefect_harness\b")
#: The unit of every module that uses the harness.
HARNESS_UNIT = "prefect_harness"


@functools.cache
def module_group(rootdir: Path, module: str) -> str:
    """The unit of work of the tests of `module` (a path relative to `rootdir`)."""
    try:
        source = (rootdir / module).read_text()
    except OSError:  # not a file: its own unit
        return module
    if named := GROUP_MARK.search(source):
        return named.group(1)
    if HARNESS.search(source):
        return HARNESS_UNIT
    return module


def _group_of(item: pytest.Item) -> str:
    return module_group(Path(item.config.rootpath), item.nodeid.split("::", 1)[0])


def last_of_unit(item: pytest.Item, nextitem: pytest.Item | None, group: str) -> bool:
    """True when `item` is the last test of unit `group` this worker runs.

    Only under `--dist loadgroup` (a worker sees it as option.loadgroup: xdist/remote.py),
    where a unit's tests run one after another on one worker; in one process the modules
    of a unit need not be adjacent.
    """
    if not getattr(item.config.option, "loadgroup", False) or _group_of(item) != group:
        return False
    return nextitem is None or _group_of(nextitem) != group


class ModuleGroupScheduling(LoadScopeScheduling):
    """LoadScopeScheduling with one scope per `module_group`."""

    def _split_scope(self, nodeid: str) -> str:
        return module_group(Path(self.config.rootpath), nodeid.split("::", 1)[0])
