"""``GET /s/{id}/feed.atom``: a strategy's Atom 1.0 feed (RFC 4287) of what its publication rule
allows a follower to learn (``libs.infra.follows.events``: orders live or delayed 24 h, drawdown
records, a new high after a drawdown of 10 % or more, 30 days without activity), at most 50
entries, newest first, derived from the read models on each request (the ETag names what they
depend on: 304 when unchanged). Unknown and private strategies: the page's 404."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from litestar import Request, Response, get

from libs.infra.follows.events import FollowEvent, derive

from . import page_data
from .serving import Answer, html_headers, json_headers, not_modified_answer, render, serve, state

ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
SESSION_COOKIE = "access_token"

ET.register_namespace("", ATOM)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        node.text = text
    return node


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def atom(base: str, strategy_id: str, name: str, events: list[FollowEvent], fallback: datetime) -> bytes:
    """The feed document: ``base`` the site's URL (no trailing slash)."""
    page = f"{base}/s/{strategy_id}"
    feed = ET.Element(f"{{{ATOM}}}feed")
    _el(feed, "id", f"urn:uuid:{strategy_id}")
    _el(feed, "title", f"{name} on BotRanks")
    _el(feed, "subtitle", "Orders as published, drawdown records, new highs after a drawdown, inactivity")
    _el(feed, "updated", _stamp(events[0].at if events else fallback))
    _el(feed, "link", rel="self", type="application/atom+xml", href=f"{page}/feed.atom")
    _el(feed, "link", rel="alternate", type="text/html", href=page)
    author = _el(feed, "author")
    _el(author, "name", "BotRanks")
    _el(feed, "generator", "BotRanks")
    for event in events:
        entry = _el(feed, "entry")
        _el(entry, "id", event.urn)
        _el(entry, "title", event.title)
        _el(entry, "updated", _stamp(event.at))
        _el(entry, "link", rel="alternate", type="text/html", href=page)
        _el(entry, "category", term=event.kind)
        lines = [f"{k}: {v}" for k, v in event.data.items()]
        _el(entry, "content", "\n".join([event.title, *lines]), type="text")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8", xml_declaration=False)


@get("/s/{strategy_id:str}/feed.atom", include_in_schema=False)
async def strategy_feed(request: Request, strategy_id: str) -> Response:
    db, cache, build = state(request)
    token = request.cookies.get(SESSION_COOKIE)
    base = request.app.state.settings.url.rstrip("/")

    def work() -> Answer:
        sid = page_data.strategy_uuid(strategy_id)
        acc = page_data.access(db, sid, token) if sid else None
        if acc is None or sid is None:
            return Answer(render(request, "not_found.html"), 404, headers=html_headers())
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # inactivity moves by the hour
        p = acc.profile
        tag = page_data.etag(
            build,
            "feed.atom",
            base,
            p.id,
            p.name,
            p.visibility,
            p.show_positions,
            acc.viewer,
            acc.publication,
            acc.cutoff,
            db.ledger.nav_version(p.id),
            db.ledger.leaderboard_version(),
            hour,
        )
        headers = json_headers(tag, private=acc.owner or p.visibility != "public")
        if page_data.not_modified(request.headers.get("if-none-match"), tag):
            answer = not_modified_answer(tag, headers)
        else:
            body = cache.bodies.get(tag) or cache.bodies.put(
                tag, atom(base, str(p.id), p.name, derive(db, p.id, acc.publication, acc.cutoff, hour), p.created_at)
            )
            answer = Answer(body, media_type=MEDIA_TYPE, headers=headers)
        answer.strategy_id, answer.viewer = sid, acc.viewer
        return answer

    return await serve(request, "feed.atom", work)
