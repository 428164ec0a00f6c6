"""The OpenAPI description of the public JSON and downloads (``/p/...``, ``pages``): their handlers
read raw query parameters and write hand-built JSON, so Litestar cannot describe them; this does."""

from __future__ import annotations

from typing import Any

import msgspec

from botranks_domain.accounts import OwnerRecord
from botranks_domain.profiles import MARKETS
from botranks_domain.views import (
    LEADERBOARD_DEFAULT_MIN_DAYS,
    LEADERBOARD_DEFAULT_SORT,
    LEADERBOARD_SORTS,
    LIVE_ONLY_MIN_SHARE,
    LIVE_REPORTING_S,
    ChainHead,
    LeaderboardRow,
)
from libs.infra.openapi import API_KEY, PUBLIC, SESSION

from .board_query import MAX_MIN_DAYS, MAX_PAGE, PAGE_SIZE
from .compare import IDS_PATTERN, MAX_RAW

ERROR = {
    "type": "object",
    "required": ["detail"],
    "additionalProperties": False,
    "properties": {"detail": {"type": "string"}},
}
ANYONE: list[dict[str, list[str]]] = [{}, {SESSION: []}]  # the owner's session also sees a private strategy


def _struct(kind: type) -> dict[str, Any]:
    """msgspec's own JSON schema of a struct, with the structs it holds inline (no ``$defs``)."""
    found = msgspec.json.schema(kind)
    defs = found["$defs"]

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            return inline(defs[ref.rsplit("/", 1)[1]]) if ref else {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    return inline(defs[kind.__name__])


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


NOT_MODIFIED = {"description": "Not modified (If-None-Match matched the ETag)"}
NOT_FOUND = _error("No such strategy, or a private one and not its owner's session")
TOO_MANY = _error("Too many requests from this address (Retry-After)")
STRATEGY_ID = {
    "name": "strategy_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The strategy's id (anything else: 404)",
}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "An ETag of an earlier answer: 304 while nothing changed",
}

LEADERBOARD = {
    "type": "object",
    "required": ["items", "total", "sort", "descending", "min_days", "live_only", "page", "pages", "page_size"],
    "properties": {
        "items": {"type": "array", "items": _struct(LeaderboardRow)},
        "total": {"type": "integer", "minimum": 0},
        "sort": {"type": "string", "enum": list(LEADERBOARD_SORTS)},
        "descending": {"type": "boolean"},
        "min_days": {"type": "integer", "minimum": 0},
        "live_only": {"type": "boolean"},
        "q": {"type": "string", "description": "the name search it answers (empty: none)"},
        "min_trades": {"type": "integer", "minimum": 0},
        "max_dd": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 100}, {"type": "null"}]},
        "market": {"type": "string", "description": "the market filter (empty: any)"},
        "currency": {"type": "string", "description": "the base currency filter (empty: any)"},
        "min_live": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 100}, {"type": "null"}]},
        "page": {"type": "integer", "minimum": 1},
        "pages": {"type": "integer", "minimum": 1},
        "page_size": {"type": "integer", "const": PAGE_SIZE},
    },
}
NULLABLE_OBJECT = {"anyOf": [{"type": "object"}, {"type": "null"}]}
SUMMARY = {
    "type": "object",
    "required": [
        "strategy",
        "viewer",
        "publication",
        "performance",
        "chain",
        "positions",
        "recent_orders",
        "recent_cash",
        "corporate_actions",
    ],
    "properties": {
        "strategy": {
            "type": "object",
            "required": ["id", "name", "visibility"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string"},
                "visibility": {"type": "string", "enum": ["public", "private"]},
                "benchmark": {"type": ["string", "null"]},
                "show_positions": {"type": "string", "enum": ["none", "delayed", "live"]},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
        "viewer": {"type": "string", "description": "who the page is shown to (owner, or anyone)"},
        "publication": {"type": "string", "enum": ["none", "delayed", "live"]},
        "published_before": {"type": ["string", "null"], "format": "date-time"},
        "performance": {
            "type": "object",
            "description": "as GET /api/v1/strategies/{id}/performance, with its `trading` statistics",
        },
        "profile": {
            "type": "object",
            "description": "its profile (docs/METHODOLOGY.md#profiles): the owner's Markdown description and"
            " tags, the markets derived from its symbols, the start date, base currency, equity bracket and"
            " the owner's public handle",
            "properties": {
                "description": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "markets": {"type": "array", "items": {"type": "object"}},
                "started": {"type": ["string", "null"], "format": "date"},
                "base_currency": {"type": "string"},
                "equity_bracket": {"type": ["string", "null"]},
                "owner_handle": {"type": ["string", "null"]},
            },
        },
        "rank": {"type": ["integer", "null"]},
        "live_share": {"type": ["number", "null"]},
        "orders": {"type": ["integer", "null"]},
        "last_activity": {"type": ["string", "null"], "format": "date-time"},
        "chain": {**_struct(ChainHead), "description": "the head of the strategy's hash chain, and its days"},
        "positions": NULLABLE_OBJECT,
        "recent_orders": {"type": "array", "items": {"type": "object"}},
        "recent_cash": {"type": "array", "items": {"type": "object"}},
        "corporate_actions": {"type": "array", "items": {"type": "object"}},
    },
}


def _get(
    summary: str,
    description: str,
    responses: dict[int, Any],
    parameters: list[dict[str, Any]],
    operation_id: str,
    security: list[dict[str, list[str]]] = ANYONE,
) -> dict[str, Any]:
    return {
        "get": {
            "tags": [PUBLIC],
            "summary": summary,
            "description": description,
            "operationId": operation_id,
            "parameters": parameters,
            "security": security,
            "responses": {str(code): answer for code, answer in responses.items()},
        }
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


PATHS: dict[str, Any] = {
    "/p/leaderboard": _get(
        f"The leaderboard of public strategies, {PAGE_SIZE} a page",
        "What the leaderboard page (`/`) shows, as JSON.",
        {
            200: _json("A page of the leaderboard", LEADERBOARD),
            304: NOT_MODIFIED,
            400: _error("A query parameter out of its range (named)"),
            429: TOO_MANY,
        },
        [
            {
                "name": "sort",
                "in": "query",
                "required": False,
                "description": f"column (empty: {LEADERBOARD_DEFAULT_SORT})",
                "schema": {"type": "string", "enum": ["", *LEADERBOARD_SORTS]},
            },
            {
                "name": "dir",
                "in": "query",
                "required": False,
                "description": "default: the column's natural order",
                "schema": {"type": "string", "enum": ["", "asc", "desc"]},
            },
            {
                "name": "min_days",
                "in": "query",
                "required": False,
                "description": f"track record of at least (default {LEADERBOARD_DEFAULT_MIN_DAYS})",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_MIN_DAYS},
            },
            {
                "name": "live_only",
                "in": "query",
                "required": False,
                "description": "only strategies whose orders were reported live"
                f" (within {LIVE_REPORTING_S // 60} minutes) at least {LIVE_ONLY_MIN_SHARE:.0%} of the time",
                "schema": {"type": "string", "enum": ["", "0", "1", "false", "true", "off", "on"]},
            },
            {
                "name": "q",
                "in": "query",
                "required": False,
                "description": "a piece of the name, the owner's handle or a tag, any case (spaces collapsed);"
                " `@text`: of the handle only",
                "schema": {"type": "string", "maxLength": 60},
            },
            {
                "name": "market",
                "in": "query",
                "required": False,
                "description": "it has ordered a symbol of this market (docs/METHODOLOGY.md#markets)",
                "schema": {"type": "string", "enum": ["", *MARKETS]},
            },
            {
                "name": "currency",
                "in": "query",
                "required": False,
                "description": "its base currency (ISO 4217, any case)",
                "schema": {"type": "string", "pattern": "^([A-Za-z]{3})?$"},
            },
            {
                "name": "min_live",
                "in": "query",
                "required": False,
                "description": "at least this many per cent of its orders reported live (empty: any)",
                "schema": {"type": "integer", "minimum": 0, "maximum": 100},
            },
            {
                "name": "min_trades",
                "in": "query",
                "required": False,
                "description": "at least this many closed trades",
                "schema": {"type": "integer", "minimum": 0, "maximum": 10_000_000},
            },
            {
                "name": "max_dd",
                "in": "query",
                "required": False,
                "description": "a max drawdown no deeper than this many per cent (empty: any)",
                "schema": {"type": "integer", "minimum": 0, "maximum": 100},
            },
            {
                "name": "page",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
            },
            IF_NONE_MATCH,
        ],
        "publicLeaderboard",
        security=[{}],
    ),
    "/p/owners/{handle}": _get(
        "An owner's public page",
        "What `/u/{handle}` shows, as JSON: the handle, when they joined, how many strategies they have started"
        " (public, private, deleted) and their public strategies' leaderboard rows.",
        {
            200: _json(
                "The owner",
                {
                    "type": "object",
                    "required": ["owner", "strategies"],
                    "properties": {
                        "owner": _struct(OwnerRecord),
                        "strategies": {"type": "array", "items": _struct(LeaderboardRow)},
                    },
                },
            ),
            304: NOT_MODIFIED,
            404: _error("No owner has this handle"),
            429: TOO_MANY,
        },
        [
            {"name": "handle", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}},
            IF_NONE_MATCH,
        ],
        "publicOwner",
        security=[{}],
    ),
    "/p/strategies/{strategy_id}": _get(
        "A strategy's public summary",
        "What the strategy page (`/s/{id}`) shows, as JSON: performance, rank, the hash chain's head, and"
        " positions, orders and cash as far as the owner publishes them (`show_positions`).",
        {200: _json("The summary", SUMMARY), 304: NOT_MODIFIED, 404: NOT_FOUND, 429: TOO_MANY},
        [STRATEGY_ID, IF_NONE_MATCH],
        "publicStrategy",
    ),
    "/p/strategies/{strategy_id}/series": _get(
        "A strategy's charts: equity, benchmark, drawdown, rolling figures and monthly returns",
        "The series the strategy page draws (equity and benchmark rebased, drawdown, 63-day rolling Sharpe and"
        " volatility, the monthly returns table).",
        {
            200: _json(
                "The series",
                {
                    "type": "object",
                    "required": ["dates", "equity"],
                    "properties": {
                        "dates": {"type": "array", "items": {"type": "string", "format": "date"}},
                        "equity": {"type": "array"},
                        "benchmark": {"type": ["array", "null"], "description": "null without a benchmark"},
                        "benchmark_symbol": {"type": ["string", "null"]},
                        "drawdown": {"type": "array"},
                        "rolling_sharpe": {"type": "array"},
                        "rolling_volatility": {"type": "array"},
                        "rolling_window": {"type": "integer"},
                        "monthly": {"type": "object"},
                    },
                },
            ),
            304: NOT_MODIFIED,
            404: NOT_FOUND,
            429: TOO_MANY,
        },
        [STRATEGY_ID, IF_NONE_MATCH],
        "publicSeries",
    ),
    "/p/strategies/{strategy_id}/nav.csv": _get(
        "A strategy's daily NAV as CSV",
        "`date,cash,market_value,total_equity,external_flow`, one line a day, oldest first.",
        {
            200: {
                "description": "The CSV file (an attachment)",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            304: NOT_MODIFIED,
            404: NOT_FOUND,
            429: TOO_MANY,
        },
        [STRATEGY_ID, IF_NONE_MATCH],
        "publicNavCsv",
    ),
    "/p/strategies/{strategy_id}/trades.csv": _get(
        "A strategy's trades as CSV, as far as the owner publishes them",
        "Every field of GET /api/v1/strategies/{id}/trades (`id,symbol,direction,status,opened_at,closed_at,"
        "quantity_open,max_quantity,entry_price,exit_price,quantity_closed,fees,realized_pnl,return,holding_days,"
        "fills,currency,realized_pnl_base`), one trade a line in the order opened, up to what `show_positions`"
        " publishes (`delayed`: trades"
        " that ended before the delay, no open ones; `none`: 403); the owner's session gets them all.",
        {
            200: {
                "description": "The CSV file (an attachment)",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            304: NOT_MODIFIED,
            403: _error("The owner does not publish the strategy's trades"),
            404: NOT_FOUND,
            429: TOO_MANY,
        },
        [STRATEGY_ID, IF_NONE_MATCH],
        "publicTradesCsv",
    ),
    "/p/strategies/{strategy_id}/events.jsonl": _get(
        "A strategy's events as its hash chain (JSONL), as far as the owner publishes them",
        "As GET /api/v1/strategies/{id}/events, up to what `show_positions` publishes (`delayed`: events that"
        " arrived before the delay; `none`: 403); the owner's session or a key of the strategy gets them all.",
        {
            200: {
                "description": "One JSON object a line",
                "content": {"application/jsonl": {"schema": {"type": "string"}}},
            },
            304: NOT_MODIFIED,
            403: _error("The owner does not publish the strategy's events"),
            404: NOT_FOUND,
            429: TOO_MANY,
        },
        [STRATEGY_ID, IF_NONE_MATCH],
        "publicEvents",
        security=[*ANYONE, {API_KEY: []}],
    ),
}

NULLABLE_NUMBER = {"type": ["number", "null"]}
CORRELATION: dict[str, Any] = {
    "type": "object",
    "required": ["value", "days", "warning"],
    "properties": {
        "value": {**NULLABLE_NUMBER, "minimum": -1, "maximum": 1},
        "days": {"type": "integer", "minimum": 0, "description": "paired daily returns it is computed from"},
        "warning": {"type": ["string", "null"], "description": "why `value` is null"},
    },
}
COMPARE = {
    "type": "object",
    "required": ["ids", "common", "strategies", "correlation", "min_pairs", "warnings"],
    "properties": {
        "ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
        "common": {
            "type": "object",
            "description": "the dates on which every strategy has a NAV row",
            "properties": {
                "days": {"type": "integer", "minimum": 0},
                "returns": {"type": "integer", "minimum": 0},
                "first": {"type": ["string", "null"], "format": "date"},
                "last": {"type": ["string", "null"], "format": "date"},
                "dates": {"type": "array", "items": {"type": "string", "format": "date"}},
            },
        },
        "strategies": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name", "figures", "equity", "drawdown", "benchmark_correlation"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "name": {"type": "string"},
                    "benchmark": {"type": ["string", "null"]},
                    "figures": {
                        "type": "object",
                        "description": "its /performance figures and leaderboard row, over its whole history",
                    },
                    "warnings": {"type": "array", "items": {"type": "string"}},
                    "equity": {
                        "type": ["array", "null"],
                        "items": {"type": "number"},
                        "description": "growth index rebased to 100 on the first common date, one per common date",
                    },
                    "drawdown": {"type": ["array", "null"], "items": {"type": "number"}},
                    "benchmark_correlation": {
                        **CORRELATION,
                        "properties": {**CORRELATION["properties"], "symbol": {"type": ["string", "null"]}},
                    },
                },
            },
        },
        "correlation": {
            "type": "array",
            "description": "Pearson correlations of the daily returns on the common dates, row i column j",
            "items": {"type": "array", "items": CORRELATION},
        },
        "min_pairs": {"type": "integer"},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
}
PATHS["/p/compare"] = _get(
    "Up to 6 public strategies side by side",
    "What the compare page (`/compare`) shows, as JSON: each strategy's time-weighted equity rebased to 100 on"
    " the common dates (every one has a NAV row), its drawdown there, its figures, and the correlation matrix of"
    " the daily returns on the common dates, and each one's with its own benchmark (null with a warning under"
    " 20 paired returns).",
    {
        200: _json("The comparison", COMPARE),
        304: NOT_MODIFIED,
        400: _error("`ids` missing, malformed, repeated or more than 6"),
        404: _error("One of the ids is no public strategy (named)"),
        429: TOO_MANY,
    },
    [
        {
            "name": "ids",
            "in": "query",
            "required": True,
            "description": "1 to 6 distinct strategy ids, comma-separated",
            "schema": {"type": "string", "maxLength": MAX_RAW, "pattern": IDS_PATTERN},
        },
        IF_NONE_MATCH,
    ],
    "publicCompare",
    security=[{}],
)
