"""The locks: every package pinned with hashes, and this environment installed from them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stack.__main__ import main as stack_main
from stack.lockfile import compare, installed_versions, locked_versions

REPO = Path(__file__).resolve().parents[2]
DEV_LOCK = REPO / "requirements-dev.lock"
IMAGE_LOCK = REPO / "requirements.lock"


def test_the_installed_packages_are_exactly_the_dev_lock():
    # `make setup` installs requirements-dev.lock: a package missing, at another version or
    # installed beside the lock is drift (`rm -rf .venv && make setup` repairs it).
    difference = compare(DEV_LOCK)
    assert not difference, f"installed packages differ from {DEV_LOCK.name}:\n" + \
        difference.describe()


def test_the_check_names_what_differs(tmp_path: Path, capsys):
    # GIVEN a lock that pins an installed package at another version, and a missing one
    installed = installed_versions()
    lock = tmp_path / "requirements.lock"
    pins = {**installed,
            "sqlalchemy": "2.1.9", "no-such-package-here": "1.0"}
    del pins["prefect"]
    lock.write_text("".join(f"{name}=={version} \\\n    --hash=sha256:{'0' * 64}\n"
                            for name, version in pins.items()))
    # WHEN the installed set is compared with it
    # (`python -m stack check-lock`, as `make check-lock` runs it, in this process)
    code = stack_main(["check-lock", "--lock", str(lock)])
    # THEN it fails and names each difference
    err = capsys.readouterr().err
    assert code == 1
    assert f"sqlalchemy: locked 2.1.9, installed {installed['sqlalchemy']}" in err
    assert "missing: no-such-package-here==1.0" in err
    assert f"not in the lock: prefect=={installed['prefect']}" in err


def test_every_entry_has_hashes_and_the_known_breaks_are_pinned():
    for lock in (DEV_LOCK, IMAGE_LOCK):
        text = lock.read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        for entry in entries:
            head = entry.splitlines()[0]
            assert "==" in head, (lock.name, head)
            assert "--hash=sha256:" in entry, f"{lock.name}: {head} has no hash"
        pins = locked_versions(lock)
        # prefect 3.8.8's scheduler fails on SQLAlchemy 2.1
        # (tests/integration/test_schedule_on_the_open_stack.py)
        assert pins["sqlalchemy"].startswith("2.0."), pins["sqlalchemy"]
        assert pins["prefect"] == "3.8.8"


def test_the_locks_hold_pyprojects_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    dev, image = locked_versions(DEV_LOCK), locked_versions(IMAGE_LOCK)
    for requirement in map(Requirement, project["dependencies"] + extras["kubernetes"]
                           + extras["dev"]):
        name = canonicalize_name(requirement.name)
        assert requirement.specifier.contains(dev[name]), (requirement, dev[name])
    for requirement in map(Requirement, project["dependencies"] + extras["kubernetes"]):
        assert image[canonicalize_name(requirement.name)] == dev[canonicalize_name(
            requirement.name)]
