"""Profiles on the public side (issue 24; docs/NOTES.md "Profiles"): a strategy's "about" block (its
description rendered safely, markets, tags, start date, base currency, equity bracket, owner) and an
owner's public page, ``/u/{handle}`` (HTML) and ``/p/owners/{handle}`` (JSON).

The description is the owner's Markdown rendered by markdown-it-py's CommonMark with raw HTML off (it is
shown as text), images off (a stranger's image is a tracking pixel), and every link with
``rel="nofollow ugc noopener"``; markdown-it refuses ``javascript:``, ``vbscript:``, ``file:`` and
``data:`` link targets itself. Rendered texts are kept in a small LRU (a description is at most 4,000
characters)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from litestar import MediaType, Request, Response, Router, get
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

from botranks_domain.accounts import OwnerRecord, StrategyProfile
from botranks_domain.profiles import MARKETS, bracket_label
from botranks_domain.views import LeaderboardRow
from libs.infra.db import Database
from libs.infra.web import page_security_headers

from . import page_data
from .serving import Answer, html_headers, json_headers, not_modified_answer, render, serve, state

LINK_REL = "nofollow ugc noopener"
MAX_HANDLE_PATH = 64


def _link_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    tokens[idx].attrSet("rel", LINK_REL)
    return self.renderToken(tokens, idx, options, env)


@functools.cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).disable("image")
    md.add_render_rule("link_open", _link_open)
    return md


@functools.lru_cache(maxsize=1024)
def description_html(text: str) -> Markup:
    """The owner's Markdown as safe HTML (see the module docstring); empty text: empty."""
    return Markup(_parser().render(text)) if text.strip() else Markup("")


def about(profile: StrategyProfile, row: LeaderboardRow | None) -> dict[str, Any]:
    """What a strategy's profile shows (the page's "About" block, ``profile`` in ``/p/strategies/{id}``)."""
    markets = row.markets if row else []
    bracket = row.equity_bracket if row else None
    return {
        "description": profile.description,
        "description_html": description_html(profile.description),
        "markets": [{"code": m, "label": MARKETS.get(m, m)} for m in markets],
        "tags": profile.tags,
        "started": row.inception_date if row else None,
        "created_at": profile.created_at,
        "base_currency": profile.base_currency,
        "equity_bracket": bracket_label(bracket, profile.base_currency),
        "owner_handle": profile.owner_handle,
    }


def about_json(profile: StrategyProfile, row: LeaderboardRow | None) -> dict[str, Any]:
    """``about`` without the rendered HTML (JSON readers render the Markdown themselves)."""
    return {k: v for k, v in about(profile, row).items() if k != "description_html"}


# ---------------------------------------------------------------- an owner's public page


def _owner(db: Database, handle: str) -> tuple[OwnerRecord, list[LeaderboardRow]] | None:
    if not 1 <= len(handle) <= MAX_HANDLE_PATH:
        return None
    record = db.identity.owner_record_by_handle(handle)
    if record is None:
        return None
    return record, db.ledger.public_rows(record.public_ids)


def _owner_answer(request: Request, handle: str, as_json: bool) -> Answer:
    db, cache, build = state(request)
    found = _owner(db, handle)
    if found is None:
        if as_json:
            body = page_data.encode_json({"detail": f"No owner has the handle {handle[:MAX_HANDLE_PATH]!r}"})
            return Answer(body, 404, MediaType.JSON, json_headers())
        message = "No one here has this handle."
        return Answer(
            render(request, "error.html", title="Owner not found", status=404, message=message),
            404,
            headers=html_headers(),
        )
    record, rows = found
    what = "owner.json" if as_json else "owner.html"
    tag = page_data.etag(build, what, record, db.ledger.leaderboard_version())
    headers = json_headers(tag) if as_json else html_headers(tag)
    if page_data.not_modified(request.headers.get("if-none-match"), tag):
        return not_modified_answer(tag, headers)
    cached = cache.bodies.get(tag)
    if cached is None:
        if as_json:
            made = page_data.encode_json({"owner": record, "strategies": rows})
        else:
            made = render(request, "owner.html", owner=record, rows=rows)
        cached = cache.bodies.put(tag, made)
    return Answer(cached, media_type=MediaType.JSON if as_json else MediaType.HTML, headers=headers)


@get("/u/{handle:str}", include_in_schema=False)
async def owner_page(request: Request, handle: str) -> Response:
    """An owner's public page: their handle, when they joined, how many strategies they have started
    (public, private, deleted) and their public strategies with their board figures."""
    return await serve(request, "owner", lambda: _owner_answer(request, handle, as_json=False))


@get("/p/owners/{handle:str}", include_in_schema=False)
async def owner_json(request: Request, handle: str) -> Response:
    """The owner's page as JSON (``public_schema``: ``/p/owners/{handle}``)."""
    return await serve(request, "owner.json", lambda: _owner_answer(request, handle, as_json=True))


def routes() -> list[Any]:
    """The page (with the pages' headers) and its JSON."""
    page = Router(
        path="/", route_handlers=[owner_page], response_headers=page_security_headers(), include_in_schema=False
    )
    return [page, owner_json]
