"""The migrations, now assembled from each owner's DDL, apply the same statements per version as
the single list they replaced (tests/unit/data/migrations_v15.json, that list as it was applied).

Within a version, statements keep their order inside each owner's piece; across owners only
independent statements may have moved (the owners come in ``schema.OWNERS`` order).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from libs.infra import follows, identity, prices, readmodel, schema, store

BEFORE = {
    int(v): text for v, text in json.loads((Path(__file__).parent / "data" / "migrations_v15.json").read_text()).items()
}


def statements(text: str) -> list[str]:
    """The SQL statements of a migration, comments dropped and whitespace collapsed; ``;`` inside
    quotes or ``$$`` bodies does not end a statement."""
    out, current, i, quote = [], [], 0, None
    while i < len(text):
        if quote is None and text.startswith("--", i):
            i = text.index("\n", i) if "\n" in text[i:] else len(text)
            continue
        if text.startswith("$$", i):
            quote = None if quote == "$$" else ("$$" if quote is None else quote)
            current.append("$$")
            i += 2
            continue
        ch = text[i]
        if ch == "'" and quote in (None, "'"):
            quote = None if quote == "'" else "'"
        if ch == ";" and quote is None:
            out.append(re.sub(r"\s+", " ", "".join(current)).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    assert quote is None and not "".join(current).strip(), "unterminated statement"
    return out


def test_the_old_list_parses_into_its_statements() -> None:
    assert len(statements(BEFORE[1])) == 17 and len(statements(BEFORE[4])) == 7
    assert statements(BEFORE[14]) == ["DROP FUNCTION botranks_event_partition(bytea, int)"]


def test_every_version_applies_the_same_statements_as_before() -> None:
    # versions after the single list (16 on) were written by the owners from the start
    assert [version for version, _ in schema.MIGRATIONS][:15] == list(range(1, 16)) == sorted(BEFORE)
    for version, text in schema.MIGRATIONS[:15]:
        assert sorted(statements(text)) == sorted(statements(BEFORE[version])), version


def test_each_owners_statements_keep_their_order_and_owners_come_in_a_fixed_order() -> None:
    assert schema.OWNERS == (store, identity, prices, readmodel, follows)
    for version, text in schema.MIGRATIONS[:15]:
        before = statements(BEFORE[version])
        pieces = [statements(owner.MIGRATIONS[version]) for owner in schema.OWNERS if version in owner.MIGRATIONS]
        assert [s for piece in pieces for s in piece] == statements(text), version
        for piece in pieces:
            assert [before.index(s) for s in piece] == sorted(before.index(s) for s in piece), version


def test_single_owner_versions_are_byte_identical() -> None:
    for version, text in schema.MIGRATIONS[:15]:
        if sum(version in owner.MIGRATIONS for owner in schema.OWNERS) == 1:
            assert text == BEFORE[version], version


def test_each_table_is_created_by_its_owner() -> None:
    created = {
        owner: set(re.findall(r"CREATE (?:UNLOGGED )?TABLE (\w+)", "".join(owner.MIGRATIONS.values())))
        for owner in schema.OWNERS
    }
    assert created[store] == {"botranks_meta", "relay_position"}
    assert created[identity] == {
        "strategies",
        "api_keys",
        "users",
        "sessions",
        "rate_windows",
        "auth_throttle",
        "strategy_updates",
        "strategy_tombstones",
    }
    assert created[prices] == {"prices", "price_updates", "market_data_symbols", "splits", "symbol_currencies"}
    assert all(t.startswith(("rm_", "projector_")) for t in created[readmodel])
    assert created[follows] == {"follows", "webhooks", "webhook_deliveries"}
