"""The Redis of deployments/k8s/redis.yaml, run for real: its ACL lets the queue work and
refuses everything else.

The test starts a local redis-server (7.x, on a free port) from the manifest itself: the
ConfigMap's `redis.conf` with only the paths, port and bind address changed, and the ACL
file written by the StatefulSet's own init-container script from the ConfigMap's
`queue-user.acl` and two passwords. The workflow pods authenticate with a password only,
i.e. as the `default` user: every `WorkQueue` operation must pass as that user, and the
commands a leaked queue password must not reach (FLUSHALL, KEYS, CONFIG, SCRIPT FLUSH,
keys outside the queue's prefix, pub/sub...) must be refused.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_server import REDIS_SERVER, RedisServer

from trainer.errors import LeaseLostError, QueueConnectionError
from trainer.queue.settings import RedisSettings
from trainer.queue.work_queue import WorkQueue

pytestmark = pytest.mark.integration

REDIS_MANIFEST = Path(__file__).resolve().parents[2] / "deployments" / "k8s" / "redis.yaml"
QUEUE_PASSWORD = "queue-secret-0"
ADMIN_PASSWORD = "admin-secret-0"
#: Paths of the pod (ConfigMap mount, ACL emptyDir, data volume) the test relocates.
POD_CONFIG_DIR, POD_ACL_DIR, POD_DATA_DIR = "/etc/redis", "/run/redis-acl", "/data"

D = [dt.date(2018, 4, day) for day in range(1, 8)]


def manifest_objects() -> tuple[dict[str, Any], dict[str, Any]]:
    """The ConfigMap and the StatefulSet of deployments/k8s/redis.yaml."""
    documents = [d for d in yaml.safe_load_all(REDIS_MANIFEST.read_text()) if d]
    config_map = next(d for d in documents if d["kind"] == "ConfigMap")
    statefulset = next(d for d in documents if d["kind"] == "StatefulSet")
    return config_map, statefulset


def relocated(text: str, directory: Path) -> str:
    """`text` with the pod's paths moved under `directory`; each path must occur."""
    for pod_path, local in ((POD_CONFIG_DIR, "etc"), (POD_ACL_DIR, "acl"),
                            (POD_DATA_DIR, "data")):
        text = text.replace(f" {pod_path}", f" {directory / local}")
    return text


class ManifestRedisServer(RedisServer):
    """redis-server run from the manifest's redis.conf and ACL file (see module docstring).

    The helper's `start` pings without a password, which this ACL refuses, so readiness
    is checked as the admin user instead; stop/kill/url come from `RedisServer`.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        for sub in ("etc", "acl", "data"):
            (self.directory / sub).mkdir(exist_ok=True)
        self.config = self.directory / "redis.conf"

    def prepare(self) -> None:
        """Write the ConfigMap's files and run the init container's ACL script."""
        config_map, statefulset = manifest_objects()
        data = config_map["data"]
        (self.directory / "etc" / "queue-user.acl").write_text(data["queue-user.acl"])
        init = statefulset["spec"]["template"]["spec"]["initContainers"][0]
        assert init["command"][:2] == ["sh", "-c"], init["command"]
        script = relocated(init["command"][2], self.directory)
        assert str(self.directory / "acl" / "users.acl") in script
        subprocess.run(["sh", "-c", script], check=True, timeout=30, env={
            "QUEUE_PASSWORD": QUEUE_PASSWORD, "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        conf = relocated(data["redis.conf"], self.directory)
        assert f"dir {self.directory / 'data'}" in conf
        assert f"aclfile {self.directory / 'acl' / 'users.acl'}" in conf
        self.config.write_text(conf)

    def start(self, timeout: float = 10.0) -> ManifestRedisServer:
        # Options after the file override it: a free port on loopback, a local log.
        args = [REDIS_SERVER, str(self.config), "--port", str(self.port),
                "--bind", "127.0.0.1", "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        admin = self.client("admin", ADMIN_PASSWORD)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            try:
                if admin.ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer in {timeout}s")

    def client(self, username: str | None, password: str | None) -> redis.Redis:
        # No retries: redis-py retries a refused AUTH (an AuthenticationError is a
        # ConnectionError) with backoff, which only slows the refusals tested here.
        return redis.Redis(port=self.port, username=username, password=password,
                           decode_responses=True, socket_connect_timeout=1,
                           retry=Retry(NoBackoff(), 0))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManifestRedisServer]:
    if not Path(REDIS_SERVER).exists():  # `make setup` installs it: its absence is an error
        pytest.fail(f"redis-server not found at {REDIS_SERVER}; run `make setup`")
    server = ManifestRedisServer(tmp_path_factory.mktemp("redis-acl"))
    server.prepare()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def admin(server: ManifestRedisServer) -> Iterator[redis.Redis]:
    client = server.client("admin", ADMIN_PASSWORD)
    client.flushall()
    try:
        yield client
    finally:
        client.flushall()
        client.close()


@pytest.fixture
def queue_settings(server: ManifestRedisServer, admin: redis.Redis) -> RedisSettings:
    # What the workflow pods use: a password only (FRAUDPIPE_REDIS_PASSWORD), no user.
    return RedisSettings(host="127.0.0.1", port=server.port, password=QUEUE_PASSWORD)


def test_acl_file_holds_hashes_only_and_is_private(server):
    users = (server.directory / "acl" / "users.acl").read_text()
    lines = users.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["user", "default", "on"], ["user", "admin", "on"]]
    assert QUEUE_PASSWORD not in users and ADMIN_PASSWORD not in users
    assert all(line.split()[3].startswith("#") for line in lines)
    mode = stat.S_IMODE((server.directory / "acl" / "users.acl").stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)


def test_queue_user_runs_every_queue_operation(queue_settings, admin):
    # GIVEN a queue that connects as the restricted default user
    queue = WorkQueue(queue_settings, lease_seconds=30, max_attempts=2)
    # WHEN it is used the way the CLI, the worker and the flows use it
    assert queue.push([D[2], D[0], D[1], D[3]]) == [D[0], D[1], D[2], D[3]]
    assert queue.mark_done([D[3]]) == [D[3]]
    first = queue.lease("w1")
    assert first is not None and first.date == D[0]
    assert queue.lease("w2") is None  # serial: one lease at a time
    first = queue.renew(first)
    queue.assert_holds(first)
    queue.complete(first)
    second = queue.lease("w1")
    assert second.date == D[1]
    assert queue.fail(second, "transient") is False  # requeued
    second = queue.lease("w1")
    assert second.date == D[1] and second.attempt == 2
    assert queue.fail(second, "bad file", permanent=True) is True
    assert [(day, reason) for day, reason, _ in queue.dead()] == [(D[1].isoformat(), "bad file")]
    assert queue.retry_dead() == [D[1]]
    third = queue.lease("w1")
    queue.release(third)
    # an expired lease is reaped by the next lease call, and its holder is fenced off
    short = WorkQueue(queue_settings, lease_seconds=0.05, max_attempts=3)
    stale = short.lease("w-crashed")
    time.sleep(0.2)
    fresh = short.lease("w-new")
    assert fresh is not None and fresh.date == stale.date
    with pytest.raises(LeaseLostError):
        short.complete(stale)
    short.complete(fresh)
    # the GKE sample's producer (`rpush datasets datasets/training/<date>.pkl`) still works
    queue.redis.rpush("datasets", f"datasets/training/{D[5].isoformat()}.pkl")
    # flows/tasks.py forgets done dates when a replay rewinds the head
    queue.redis.srem(queue.keys.done, D[3].isoformat())
    # THEN every step went through and the state is what the operations imply
    stats = queue.stats()
    assert (stats.pending, stats.leased, stats.dead) == (2, [], 0)
    assert queue.done() == {D[0], fresh.date}
    assert admin.acl_log() == []  # the ACL refused nothing on the way


DANGEROUS = [
    ["FLUSHALL"], ["FLUSHDB"], ["KEYS", "*"], ["CONFIG", "GET", "dir"],
    ["CONFIG", "SET", "appendonly", "no"], ["DEBUG", "SLEEP", "0"], ["SHUTDOWN", "NOSAVE"],
    ["SAVE"], ["BGREWRITEAOF"], ["REPLICAOF", "10.0.0.1", "6379"], ["MONITOR"],
    ["ACL", "LIST"], ["ACL", "SETUSER", "default", "+@all"], ["CLIENT", "KILL", "ID", "1"],
    ["SCRIPT", "FLUSH"], ["SCRIPT", "KILL"], ["FUNCTION", "FLUSH"], ["FUNCTION", "DELETE", "x"],
    ["FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f', function() end)"],
    ["FUNCTION", "RESTORE", "x"], ["MODULE", "LIST"],
    ["MIGRATE", "10.0.0.1", "6379", "fraudpipe:x", "0", "1000"], ["SORT", "fraudpipe:x"],
    ["SUBSCRIBE", "fraudpipe:events"], ["PUBLISH", "fraudpipe:events", "x"],
    ["SET", "other", "1"], ["GET", "other"], ["DEL", "session:1"],
    ["RENAME", "fraudpipe:datasets:pending", "stolen"],
]


@pytest.mark.parametrize("command", DANGEROUS, ids=lambda c: " ".join(c[:2]))
def test_acl_refuses_dangerous_and_foreign_commands_to_the_queue_user(admin, command):
    # ACL DRYRUN asks the ACL itself, so SHUTDOWN or DEBUG are judged without running them
    # (DEBUG is also off by enable-debug-command, which would hide what the ACL says).
    verdict = admin.execute_command("ACL", "DRYRUN", "default", *command)
    assert verdict != "OK", f"the queue user may run {command}"
    assert "no permissions" in verdict


def test_refusals_reach_the_client_and_cover_lua_scripts(queue_settings, admin):
    client = queue_settings.client()
    admin.set("other", "kept")
    for command in (["FLUSHALL"], ["KEYS", "*"], ["CONFIG", "GET", "dir"], ["GET", "other"]):
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command(*command)
    # a script runs with its caller's permissions: EVAL is no way around the ACL
    refused_in_script = "no permissions|can't run this command"
    with pytest.raises(redis.exceptions.ResponseError, match=refused_in_script):
        client.eval("return redis.call('SET', KEYS[1], 'x')", 1, "other")
    with pytest.raises(redis.exceptions.ResponseError, match=refused_in_script):
        client.eval("return redis.call('FLUSHALL')", 0)
    assert admin.get("other") == "kept" and admin.dbsize() == 1


def test_passwords_and_users_are_checked(server, admin):
    with pytest.raises(redis.exceptions.AuthenticationError):
        server.client(None, None).ping()
    with pytest.raises(QueueConnectionError, match="authentication failed"):
        RedisSettings(host="127.0.0.1", port=server.port, password="wrong").client()
    with pytest.raises(redis.exceptions.AuthenticationError):
        server.client("admin", QUEUE_PASSWORD).ping()
    assert server.client(None, QUEUE_PASSWORD).ping() is True


def test_admin_sees_the_manifests_persistence_and_memory_settings(admin):
    config = admin.config_get("*")
    assert config["appendonly"] == "yes" and config["appendfsync"] == "everysec"
    assert config["maxmemory-policy"] == "noeviction"
    assert int(config["maxmemory"]) == 400 * 1024 * 1024
    assert admin.acl_whoami() == "admin"


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed")
def test_readiness_probe_command_answers_with_the_queue_password(server):
    _, statefulset = manifest_objects()
    probe = statefulset["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    command = probe["exec"]["command"]
    assert command[:2] == ["sh", "-c"]
    script = command[2].replace("-h 127.0.0.1", f"-h 127.0.0.1 -p {server.port}")
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    ok = subprocess.run(["sh", "-c", script], capture_output=True, timeout=10,
                        env={**environment, "REDISCLI_AUTH": QUEUE_PASSWORD})
    assert ok.returncode == 0, ok.stderr
    refused = subprocess.run(["sh", "-c", script], capture_output=True, timeout=10,
                             env={**environment, "REDISCLI_AUTH": "wrong"})
    assert refused.returncode != 0
