"""`make down` stops the session's open stack (tests/make_up_stack.py): no listener on its
ports, and `make status` says no stack runs. The last module of the stack's xdist unit."""

from __future__ import annotations

import socket

import pytest

from tests.make_up_stack import OpenStack, make

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("make_up_stack")]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(300)
def test_make_down_stops_every_service_of_the_open_stack(make_up_stack: OpenStack) -> None:
    make_up_stack.check_up()
    assert listening(make_up_stack.prefect_port) and listening(make_up_stack.redis_port)
    # WHEN `make down`
    down = make("down", *make_up_stack.where)
    # THEN it stopped everything: no listener on either port, and status says so
    assert down.returncode == 0, down.stdout + down.stderr
    assert not listening(make_up_stack.prefect_port) and not listening(make_up_stack.redis_port)
    assert "no stack running" in make("status", *make_up_stack.where).stdout
