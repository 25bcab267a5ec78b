"""RedisSettings: URLs, environment, bounds, masked display, connection errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trainer.errors import QueueConnectionError
from trainer.queue.settings import RedisSettings


def test_from_url_reads_every_part():
    settings = RedisSettings.from_url("rediss://alice:s%40cret@10.0.0.3:6378/2", ca_file="/ca.pem")
    assert (settings.host, settings.port, settings.db) == ("10.0.0.3", 6378, 2)
    assert settings.username == "alice"
    assert settings.password.get_secret_value() == "s@cret"
    assert settings.tls is True and settings.ca_file == "/ca.pem"


def test_from_url_defaults_and_no_tls_for_redis_scheme():
    settings = RedisSettings.from_url("redis://example")
    assert (settings.host, settings.port, settings.db, settings.tls) == ("example", 6379, 0, False)
    assert settings.password is None


def test_password_is_masked_everywhere_it_is_shown():
    settings = RedisSettings.from_url("redis://:hunter2@h:1/0")
    assert settings.url_for_display() == "redis://:***@h:1/0"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://h:1", "redis://"),
        ("redis://h:99999", "port"),
        ("redis://h:1/abc", "database"),
    ],
)
def test_bad_urls_say_what_is_wrong(url, words):
    with pytest.raises(ValueError, match=words):
        RedisSettings.from_url(url)


@pytest.mark.parametrize("field, value", [("port", 0), ("db", 16), ("socket_timeout", 0),
                                          ("key_prefix", "has space"), ("queue_name", "")])
def test_bounds_fail_at_construction(field, value):
    with pytest.raises(ValidationError, match=field):
        RedisSettings(**{field: value})


def test_environment_variables_with_prefix(monkeypatch):
    monkeypatch.delenv("FRAUDPIPE_REDIS_URL", raising=False)
    monkeypatch.setenv("FRAUDPIPE_REDIS_HOST", "memorystore")
    monkeypatch.setenv("FRAUDPIPE_REDIS_PORT", "6378")
    monkeypatch.setenv("FRAUDPIPE_REDIS_PASSWORD", "authstring")
    monkeypatch.setenv("FRAUDPIPE_REDIS_QUEUE_NAME", "daily")
    settings = RedisSettings.from_env()
    assert (settings.host, settings.port, settings.queue_name) == ("memorystore", 6378, "daily")
    assert settings.password.get_secret_value() == "authstring"


def test_url_environment_variable_wins_over_fields(monkeypatch):
    monkeypatch.setenv("FRAUDPIPE_REDIS_URL", "redis://fromurl:7000/3")
    settings = RedisSettings.from_env()
    assert (settings.host, settings.port, settings.db) == ("fromurl", 7000, 3)


def test_connection_refused_names_host_port_and_what_to_check():
    from redis_server import free_port

    port = free_port()  # nothing listens there
    settings = RedisSettings(host="127.0.0.1", port=port, socket_timeout=2)
    with pytest.raises(QueueConnectionError) as info:
        settings.client()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "redis-server runs there" in message
