"""What a follower is told (libs/infra/follows/events.py) and the Atom document of it
(services/query_api/feed.py), without a database: drawdown records, a new high only after a
drawdown of 10 % or more, inactivity, stable ids, and a feed that is valid Atom 1.0 (RFC 4287's
required elements checked with xml.etree, and read back by feedparser)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import feedparser  # test-only dependency (pyproject's test extra): an independent Atom reader

from botranks_domain.nav import NavRow
from libs.infra.follows.events import derived_id, inactivity_event, nav_events, newest, order_event
from services.query_api.feed import ATOM, atom

SID = uuid.UUID("00000000-0000-4000-8000-000000000001")
START = date(2026, 1, 5)
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def rows(equity: list[int]) -> list[NavRow]:
    return [
        NavRow(START + timedelta(days=i), Decimal(e), Decimal(0), Decimal(e), Decimal(0)) for i, e in enumerate(equity)
    ]


def test_drawdown_records_are_new_all_time_lows_of_the_drawdown() -> None:
    events = nav_events(SID, rows([100, 110, 105, 108, 99, 104, 99, 98]))
    records = [e for e in events if e.kind == "drawdown_record"]
    # from the high of 110: 105 (-4.5 %), 99 (-10 %), 98 (-10.9 %); 99 again is no record
    assert [e.data["date"] for e in records] == [(START + timedelta(days=d)).isoformat() for d in (2, 4, 7)]
    assert records[-1].data["drawdown"] == round(98 / 110 - 1, 6)
    assert all(e.kind != "new_high" for e in events)


def test_a_new_high_is_told_only_after_a_drawdown_of_ten_percent() -> None:
    shallow = nav_events(SID, rows([100, 95, 101]))  # -5 % then a high: not told
    assert [e.kind for e in shallow] == ["drawdown_record"]
    deep = nav_events(SID, rows([100, 89, 95, 102, 103]))  # -11 % then 102: told once (103 is a plain high)
    highs = [e for e in deep if e.kind == "new_high"]
    assert [e.data["date"] for e in highs] == [(START + timedelta(days=3)).isoformat()]
    assert highs[0].data["drawdown_recovered"] == -0.11


def test_deposits_do_not_fake_a_recovery() -> None:
    # equity 100 → 80 (-20 %), then a deposit of 50 makes it 130: the growth index has not recovered
    nav = rows([100, 80, 130])
    nav[2] = NavRow(nav[2].date, Decimal(130), Decimal(0), Decimal(130), Decimal(50))
    assert [e.kind for e in nav_events(SID, nav)] == ["drawdown_record"]


def test_ids_are_stable_and_distinct() -> None:
    a, b = nav_events(SID, rows([100, 90, 80])), nav_events(SID, rows([100, 90, 80]))
    assert [e.id for e in a] == [e.id for e in b] and len({e.id for e in a}) == 2
    assert a[0].id == derived_id(SID, "drawdown_record", (START + timedelta(days=1)).isoformat())


def test_inactivity_after_thirty_days() -> None:
    assert inactivity_event(SID, NOW - timedelta(days=29), NOW) is None
    assert inactivity_event(SID, None, NOW) is None
    idle = inactivity_event(SID, NOW - timedelta(days=31), NOW)
    assert idle is not None and idle.at == NOW - timedelta(days=1) and idle.kind == "inactive"


def _order(minutes_ago: int) -> SimpleNamespace:
    at = NOW - timedelta(minutes=minutes_ago)
    return SimpleNamespace(
        id=uuid.uuid4(),
        strategy_id=SID,
        symbol="AAPL",
        side="buy",
        quantity=Decimal("3"),
        price=Decimal("101.5"),
        executed_at=at,
        created_at=at,
    )


def test_a_delayed_order_is_published_a_day_after_it_arrived() -> None:
    o = _order(10)
    assert order_event(o, "live").published_at == o.created_at
    assert order_event(o, "delayed").published_at == o.created_at + timedelta(hours=24)
    assert order_event(o, "live").urn == f"urn:uuid:{o.id}"


def test_the_feed_is_atom_1_0() -> None:
    events = newest([*nav_events(SID, rows([100, 89, 95, 102])), order_event(_order(5), "live")])
    body = atom("https://botranks.example", str(SID), "Alpha <&> bot", events, NOW)
    root = ET.fromstring(body)
    ns = {"a": ATOM}
    assert root.tag == f"{{{ATOM}}}feed"
    # RFC 4287 4.1.1: exactly one id, title, updated; a self link; an author (no entry has its own)
    for required in ("id", "title", "updated"):
        assert len(root.findall(f"a:{required}", ns)) == 1, required
    assert root.find("a:title", ns).text == "Alpha <&> bot on BotRanks"
    assert root.find("a:author/a:name", ns) is not None
    links = {link.get("rel"): link.get("href") for link in root.findall("a:link", ns)}
    assert links["self"] == f"https://botranks.example/s/{SID}/feed.atom"
    entries = root.findall("a:entry", ns)
    assert len(entries) == len(events) == 3
    stamps = []
    for entry in entries:
        for required in ("id", "title", "updated"):
            assert len(entry.findall(f"a:{required}", ns)) == 1, required
        assert entry.find("a:id", ns).text.startswith("urn:uuid:")
        assert entry.find("a:link[@rel='alternate']", ns).get("href") == f"https://botranks.example/s/{SID}"
        assert entry.find("a:content", ns).text
        stamp = entry.find("a:updated", ns).text
        assert stamp.endswith("Z") and datetime.fromisoformat(stamp)
        stamps.append(stamp)
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert root.find("a:updated", ns).text == stamps[0]

    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert [e.id for e in parsed.entries] == [e.urn for e in events]
    assert {t.term for e in parsed.entries for t in e.tags} == {"order", "drawdown_record", "new_high"}


def test_an_empty_feed_is_valid_too() -> None:
    body = atom("http://127.0.0.1:8000", str(SID), "Quiet", [], NOW)
    parsed = feedparser.parse(body)
    assert not parsed.bozo and parsed.version == "atom10" and parsed.entries == []
    assert parsed.feed.updated == "2026-06-01T12:00:00Z"
