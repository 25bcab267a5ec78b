"""RedisWorkQueue: validation at construction, URL parsing, the trainer's settings."""

from __future__ import annotations

import os

import pytest
from pydantic import SecretStr, ValidationError

from blocks import RedisWorkQueue

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"host": "redis://localhost"}, "host"),
        ({"host": "local host"}, "host"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"db": -1}, "db"),
        ({"db": 16}, "db"),
        ({"username": ""}, "username"),
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"socket_timeout": -1}, "socket_timeout"),
        ({"queue_name": "my queue"}, "queue_name"),
        ({"key_prefix": "a:b"}, "key_prefix"),
        ({"tls": True, "ca_pem": "not a certificate"}, "ca_pem"),
    ],
)
def test_bad_field_fails_at_construction_naming_the_field(fields, field):
    with pytest.raises(ValidationError) as caught:
        RedisWorkQueue(**fields)
    assert field in {str(p) for e in caught.value.errors() for p in e["loc"]}


def test_ca_without_tls_and_two_cas_are_refused():
    with pytest.raises(ValidationError, match="need tls=True"):
        RedisWorkQueue(ca_file="/etc/ca.pem")
    with pytest.raises(ValidationError, match="mutually exclusive"):
        RedisWorkQueue(tls=True, ca_file="/etc/ca.pem", ca_pem=PEM)


def test_password_is_a_secret_and_never_printed():
    block = RedisWorkQueue(password="hunter2")
    assert isinstance(block.password, SecretStr)
    assert "hunter2" not in repr(block) and "hunter2" not in block.url()


def test_from_url_reads_memorystore_style_urls():
    block = RedisWorkQueue.from_url(
        "rediss://default:p%40ss@10.0.0.3:6378/2?ssl_ca_certs=/etc/ca.pem", queue_name="days"
    )
    assert (block.host, block.port, block.db, block.tls) == ("10.0.0.3", 6378, 2, True)
    assert block.username == "default"
    assert block.password.get_secret_value() == "p@ss"
    assert block.ca_file == "/etc/ca.pem"
    assert block.queue_name == "days"
    assert block.url() == "rediss://default@10.0.0.3:6378/2"


@pytest.mark.parametrize("url", ["http://localhost:6379", "redis://localhost/zero"])
def test_from_url_refuses_what_it_cannot_read(url):
    with pytest.raises(ValueError, match="url"):
        RedisWorkQueue.from_url(url)


def test_settings_carry_every_connection_field():
    block = RedisWorkQueue(
        host="10.1.2.3",
        port=6380,
        db=3,
        username="svc",
        password="pw",
        tls=True,
        ca_file="/etc/ca.pem",
        key_prefix="fp",
        queue_name="days",
        socket_timeout=5,
    )
    settings = block.settings()
    assert (settings.host, settings.port, settings.db) == ("10.1.2.3", 6380, 3)
    assert settings.username == "svc" and settings.password.get_secret_value() == "pw"
    assert settings.tls is True and settings.ca_file == "/etc/ca.pem"
    assert (settings.key_prefix, settings.queue_name) == ("fp", "days")
    assert settings.socket_timeout == 5


def test_ca_pem_becomes_a_private_file_for_the_trainer():
    settings = RedisWorkQueue(tls=True, ca_pem=PEM).settings()
    with open(settings.ca_file) as handle:
        assert handle.read() == PEM
    assert os.stat(settings.ca_file).st_mode & 0o077 == 0
