"""docs/ARCHITECTURE.md stays true: its advisory-lock table is ``libs/infra/locks.py``, and its owner
table names every table the migrations create."""

from __future__ import annotations

import re
from pathlib import Path

from libs.infra import locks, schema

DOC = (Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md").read_text()


def section(start: str, end: str | None = None) -> str:
    i = DOC.index(start)
    return DOC[i : DOC.index(end, i)] if end else DOC[i:]


def test_the_lock_table_is_locks_py():
    declared = {name: value for name, value in vars(locks).items() if name.isupper() and isinstance(value, int)}
    documented = {}
    for line in section("## Advisory locks").splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")] if line.startswith("| `") else []
        if cells:
            name, ident = cells[0].strip("`"), cells[1]
            documented[name] = int(re.match(r"`?(0x[0-9A-Fa-f]+|\d+)`?", ident)[1], 0)
            if decimal := re.search(r"\((\d+)\)", ident):  # the number pg_locks shows, when written in hex
                assert int(decimal[1]) == documented[name], name
    assert documented == declared


def test_the_owner_table_names_every_table_the_migrations_create():
    created = {
        m[1]
        for _, ddl in schema.MIGRATIONS
        for m in re.finditer(r"CREATE (?:UNLOGGED )?TABLE (?:IF NOT EXISTS )?([a-z_]+)", ddl)
    }
    named = set(re.findall(r"`([a-z_]+)`", section("| owner (module) |", "Inside the services")))
    assert created and not created - named, sorted(created - named)
