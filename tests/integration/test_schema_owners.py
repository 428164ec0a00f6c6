"""A database migrated by the owners' DDL (``schema.MIGRATIONS``, assembled per version) has the
very schema the single list of migrations it replaced gave (tests/unit/data/migrations_v15.json).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import psycopg

from libs.infra import schema
from libs.infra.db import Database
from tools.backup import _pg_dump_for

BEFORE = [
    (int(v), text)
    for v, text in json.loads((Path(__file__).parents[1] / "unit" / "data" / "migrations_v15.json").read_text()).items()
]


def _schema_of(url: str, migrations: list[tuple[int, str]], monkeypatch) -> str:
    monkeypatch.setattr(schema, "MIGRATIONS", migrations)
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        db.create_tables()
    finally:
        db.close()
    with psycopg.connect(url) as conn:
        major = conn.info.server_version // 10000
    dump = subprocess.run(
        [str(_pg_dump_for(major)), "--schema-only", "--no-owner", "--no-privileges", f"--dbname={url}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return re.sub(r"^\\(un)?restrict \S+$", "", dump, flags=re.M)  # pg_dump's random per-dump token


def test_the_owners_migrations_give_the_schema_the_single_list_gave(make_database, monkeypatch):
    # the versions the single list had (later ones were written by the owners from the start)
    assembled = [(v, text) for v, text in schema.MIGRATIONS if v <= BEFORE[-1][0]]
    assert [v for v, _ in assembled] == [v for v, _ in BEFORE]
    assert assembled != BEFORE  # some versions' statements moved between owners' pieces
    before = _schema_of(make_database(), BEFORE, monkeypatch)
    after = _schema_of(make_database(), assembled, monkeypatch)
    assert "CREATE TABLE public.rm_leaderboard" in after and "botranks_check_key" in after
    assert after == before
