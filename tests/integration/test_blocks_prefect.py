"""The blocks against a real (temporary) Prefect server.

Registers the block types (CLI and Python), saves and loads each block by name, and runs
sync flows whose results persist to FilestoreStorage: Prefect's sync result path calls
`read_path`/`write_path` with `_sync=True` (docs/facts.md#prefect).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client

from blocks import ArgoServer, FilestoreStorage, RedisWorkQueue

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BLOCKS = [FilestoreStorage, RedisWorkQueue, ArgoServer]


@pytest.fixture(scope="session")
def prefect_server(prefect_harness):
    """The session's one Prefect test server (tests/integration/conftest.py).

    A second harness in the same session left Prefect's background events client
    pointing at a server that had gone, and the later flow tests lost their task runs.
    """
    return prefect_harness


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_prefect_block_register_cli_registers_every_block(prefect_server, tmp_path):
    # GIVEN the harness' API and a private PREFECT_HOME for the CLI process
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PREFECT_HOME": str(tmp_path)}
    # WHEN the documented command runs
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "blocks"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    # THEN it succeeds and the server knows each type, with its description and example
    assert done.returncode == 0, done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        for block in BLOCKS:
            block_type = client.read_block_type_by_slug(block.get_block_type_slug())
            assert block_type.description == block.get_description()
            assert f'{block.__name__}.load("BLOCK_NAME")' in block_type.code_example
            schemas = client.read_block_schemas()
            assert any(s.block_type_id == block_type.id for s in schemas)


def test_register_type_and_schema_in_python(prefect_server):
    for block in BLOCKS:
        block.register_type_and_schema()
    with get_client(sync_client=True) as client:
        slugs = {t.slug for t in client.read_block_types()}
    assert {b.get_block_type_slug() for b in BLOCKS} <= slugs
    schema = FilestoreStorage._to_block_schema()
    assert {"read-path", "write-path"} <= set(schema.capabilities)


def test_each_block_saves_and_loads_by_name_with_secrets(prefect_server, tmp_path):
    filestore = FilestoreStorage(
        local_path=str(tmp_path / "share"),
        ip_address="10.0.0.2",
        instance_name="nfs-server",
        location="us-central1-a",
        namespace="argo",
    )
    redis_queue = RedisWorkQueue(
        host="10.0.0.3",
        port=6378,
        password="auth-string",
        tls=True,
        queue_name="days",
        lease_seconds=42,
        max_attempts=5,
    )
    argo = ArgoServer(url="https://argo.example.com:2746", namespace="fraud", token="t0ken")
    for original in (filestore, redis_queue, argo):
        name = unique("test")
        original.save(name, overwrite=False)
        loaded = type(original).load(name)
        assert loaded == original
    saved = unique("redis")
    redis_queue.save(saved)
    assert RedisWorkQueue.load(saved).password.get_secret_value() == "auth-string"
    saved = unique("argo")
    argo.save(saved)
    assert ArgoServer.load(saved).workflow_url("w") == argo.workflow_url("w")
    saved = unique("share")
    filestore.save(saved)
    assert FilestoreStorage.load(saved).render_pv_pvc() == filestore.render_pv_pvc()


def test_saved_block_fails_to_save_invalid_values(prefect_server):
    # Validation happens at construction, before anything reaches the server.
    with pytest.raises(ValueError, match="capacity_gib"):
        FilestoreStorage(capacity_gib=1).save(unique("bad"))


CALLS: list[int] = []


# JSON, not Prefect's default pickle serializer: nothing on the share is ever unpickled.
@task(
    persist_result=True,
    result_storage_key="results/square-{parameters[x]}.json",
    result_serializer="json",
)
def square(x: int) -> int:
    CALLS.append(x)
    return x * x


def test_sync_flow_persists_results_to_the_share(prefect_server, tmp_path):
    # GIVEN the share as result storage of a sync flow and its task
    # (Prefect refuses result storage that is not saved server-side.)
    storage = FilestoreStorage(local_path=str(tmp_path / "share"))
    storage.save(unique("share"))

    @flow(persist_result=True, result_storage=storage, result_serializer="json")
    def sync_pipeline(x: int) -> dict[str, int]:
        return {"square": square(x)}

    CALLS.clear()
    # WHEN the flow runs twice
    first = sync_pipeline(7, return_state=True)
    second = sync_pipeline(7, return_state=True)
    # THEN both complete, the task's result is a file on the share, and the second run
    # read it back through read_path(_sync=True) instead of recomputing
    assert first.is_completed() and second.is_completed()
    assert first.result() == second.result() == {"square": 49}
    result_file = tmp_path / "share" / "results" / "square-7.json"
    record = json.loads(result_file.read_bytes())
    assert record["metadata"]["serializer"]["type"] == "json"
    assert json.loads(record["result"]) == 49
    assert CALLS == [7]
    flow_key = first.data.metadata.storage_key
    # The flow's own result is JSON on the share too (read back through the block).
    assert "49" in json.dumps(json.loads(storage.read_path(flow_key, _sync=True)))


def test_saved_share_block_is_usable_as_result_storage_by_name(prefect_server, tmp_path):
    name = unique("results")
    FilestoreStorage(local_path=str(tmp_path / "named")).save(name)

    @flow(
        persist_result=True,
        result_storage=f"{FilestoreStorage.get_block_type_slug()}/{name}",
        result_serializer="json",
    )
    def named_storage_flow() -> str:
        return "stored"

    state = named_storage_flow(return_state=True)
    assert state.result() == "stored"
    assert any((tmp_path / "named").iterdir())


def test_saved_redis_block_builds_a_working_queue(prefect_server, redis_url):
    import datetime as dt

    # GIVEN a queue block saved by name, pointing at a real redis-server
    block = RedisWorkQueue.from_url(
        redis_url, key_prefix="blocktest", lease_seconds=30, max_attempts=2
    )
    name = unique("queue")
    block.save(name)
    # WHEN a flow-side copy loaded by name pushes and a second copy leases
    producer = RedisWorkQueue.load(name).get_queue()
    consumer = RedisWorkQueue.load(name).get_queue()
    producer.push(["2018-04-02", "2018-04-01"])
    lease = consumer.lease("test-holder")
    # THEN both talk to the same queue with the block's lease policy, earliest day first
    assert lease is not None and lease.date == dt.date(2018, 4, 1)
    assert (consumer.lease_seconds, consumer.max_attempts) == (30, 2)
    assert 25 <= (lease.deadline - dt.datetime.now(dt.UTC)).total_seconds() <= 35
    consumer.complete(lease)
    assert producer.stats().done == 1 and producer.stats().pending == 1
