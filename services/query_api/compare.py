"""Side-by-side comparison of up to six public strategies: ``/compare?ids=…`` (HTML) and
``/p/compare?ids=…`` (JSON; described in ``public_schema``). Definitions: docs/NOTES.md "Compare".

- Each strategy's equity is its time-weighted growth index (``botranks_domain.series``, the returns of
  /performance) on the *common dates* (the days on which every one has a NAV row), rebased to 100 on
  the first; its drawdown is measured on that rebased curve (from its peak since the first common day).
- The figures are the strategy's own /performance answer (``PageCache.figures``, as its page) and its
  leaderboard row: over its whole history, not only the common dates.
- Correlations are Pearson's, of the returns between consecutive common dates (the growth index's
  ratio: a strategy's skipped days compound into the next common date); with its benchmark, on the
  common dates that have a benchmark close (converted into the base currency as /performance does).
  Fewer than 20 paired returns, or returns that do not vary: null, and a warning says why.
- A malformed id, a duplicate, none or more than six: 400 naming ``ids``; an unknown or private id:
  404 naming it (the same answer for both, as the strategy page).
"""

from __future__ import annotations

import math
import re
from typing import Any
from uuid import UUID

from litestar import MediaType, Request, Response, Router, get
from markupsafe import Markup

from botranks_domain.accounts import StrategyProfile
from botranks_domain.errors import BadParameter
from libs.infra.db import Database
from libs.infra.web import page_security_headers

from . import board_query, formatting, page_data, readers, svg_charts
from .compare_data import MIN_PAIRS, comparison, load, members_or_missing
from .serving import Answer, html_headers, json_headers, not_modified_answer, render, serve, state

MAX_IDS = 6
#: strategies offered by the "add" form: the default board's first ones
PICK_FROM = 20
MAX_RAW = 1000
UUID_TEXT = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: what ``ids`` must look like (the OpenAPI pattern; distinct ids is said in words)
IDS_PATTERN = f"^ *{UUID_TEXT} *(, *{UUID_TEXT} *){{0,{MAX_IDS - 1}}}$"
_ONE_ID = re.compile(UUID_TEXT)


# ---------------------------------------------------------------- parameters


def parse_ids(raw: str | None) -> list[UUID]:
    """The ``ids`` parameter: 1 to 6 distinct strategy ids (``IDS_PATTERN``); BadParameter names ``ids``."""
    text = (raw or "").strip(" ")
    if not text:
        raise BadParameter(f"`ids` must name 1 to {MAX_IDS} strategies, comma-separated; got none")
    if len(text) > MAX_RAW:
        raise BadParameter(f"`ids` is too long: at most {MAX_IDS} strategy ids")
    parts = [p.strip(" ") for p in text.split(",")]
    if len(parts) > MAX_IDS:
        raise BadParameter(f"`ids` names {len(parts)} strategies; at most {MAX_IDS} can be compared")
    out: list[UUID] = []
    for part in parts:
        if not part:
            raise BadParameter("`ids` has an empty item (two commas in a row, or one at an end)")
        if not _ONE_ID.fullmatch(part):
            raise BadParameter(f"`ids`: {part[:40]!r} is not a strategy id")
        sid = UUID(part)
        if sid in out:
            raise BadParameter(f"`ids` names {sid} twice")
        out.append(sid)
    return out


def ids_link(ids: list[UUID]) -> str:
    return "/compare?ids=" + ",".join(str(i) for i in ids) if ids else "/compare"


# ---------------------------------------------------------------- the page


FIGURE_ROWS = [
    ("total_return", "Total return", "pct", "return"),
    ("cagr", "CAGR", "pct", "return"),
    ("volatility", "Volatility", "pct_unsigned", "risk"),
    ("sharpe", "Sharpe", "ratio", "ratios"),
    ("sortino", "Sortino", "ratio", "ratios"),
    ("max_drawdown", "Max drawdown", "pct", "risk"),
    ("dsr", "DSR", "prob", "dsr"),
    ("psr", "PSR", "prob", "significance"),
    ("trades", "Trades", "integer", "trades"),
    ("win_rate", "Win rate", "pct_unsigned", "trades"),
    ("track_days", "Track record (days)", "integer", "leaderboard"),
    ("base_currency", "Base currency", "text", "currencies"),
    ("live_share", "Reported live", "pct_unsigned", "leaderboard"),
]


def cell_colour(value: float | None) -> str:
    """A background for a correlation: blue for +1, white for 0, orange for -1 (readable text on all)."""
    if value is None:
        return "#f1f5f9"
    t = max(-1.0, min(1.0, value))
    target = (37, 99, 235) if t >= 0 else (234, 88, 12)
    mix = abs(t) * 0.55
    r, g, b = (round(255 + (c - 255) * mix) for c in target)
    return f"#{r:02x}{g:02x}{b:02x}"


def format_figure(kind: str, value: Any) -> str:
    if kind == "text":
        return str(value) if value else "—"
    if kind == "pct_unsigned":
        return formatting.pct(value, 1, False)
    shown: Any = formatting.FILTERS[kind]
    return str(shown(value))


def _charts(data: dict[str, Any]) -> tuple[Markup, Markup]:
    labels = [d.isoformat() for d in data["common"]["dates"]]
    named = [s for s in data["strategies"] if s["equity"] is not None]
    equity = [svg_charts.Line(s["name"], s["equity"]) for s in named]
    dd = [svg_charts.Line(s["name"], s["drawdown"]) for s in named]
    return (
        svg_charts.line_chart(
            labels, equity, title="Equity, rebased to 100 on the first common date", baseline=100.0,
            y_format=lambda v: f"{v:g}", chart_id="compare-equity",
        ),
        svg_charts.line_chart(
            labels, dd, title="Drawdown from the peak since the first common date", baseline=0.0,
            y_format=lambda v: f"{v * 100:.0f}%", chart_id="compare-drawdown",
        ),
    )  # fmt: skip


def _view(db: Database, ids: list[UUID], data: dict[str, Any] | None) -> dict[str, Any]:
    board = board_query.leaderboard(db, board_query.leaderboard_query({}))
    picks = [r for r in board.items[:PICK_FROM] if r.strategy_id not in ids]
    equity_svg, drawdown_svg = _charts(data) if data else (Markup(""), Markup(""))
    return {
        "data": data,
        "ids": ids,
        "picks": picks,
        "full": len(ids) >= MAX_IDS,
        "max_ids": MAX_IDS,
        "rows": FIGURE_ROWS,
        "format_figure": format_figure,
        "cell_colour": cell_colour,
        "ids_link": ids_link,
        "equity_svg": equity_svg,
        "drawdown_svg": drawdown_svg,
        "palette": svg_charts.PALETTE,
        "dashes": svg_charts.DASHES,
    }


def _added(ids_raw: str | None, add: list[str]) -> list[UUID] | None:
    """The ids with the "add" form's choices appended (None when it chose nothing)."""
    extra = [a.strip() for a in add if a and a.strip()]
    if not extra:
        return None
    ids = parse_ids(ids_raw) if (ids_raw or "").strip() else []
    for raw in extra:
        found = _ONE_ID.search(raw[:MAX_RAW])  # a pasted page address works too
        if found is None:
            raise BadParameter(f"`add`: {raw[:40]!r} is not a strategy id")
        sid = UUID(found.group(0))
        if sid not in ids:
            ids.append(sid)
    if len(ids) > MAX_IDS:
        raise BadParameter(f"`ids`: at most {MAX_IDS} strategies can be compared")
    return ids


def _error(request: Request, status: int, title: str, message: str) -> Answer:
    return Answer(
        render(request, "error.html", title=title, status=status, message=message), status, headers=html_headers()
    )


def _not_found_message(sid: UUID) -> str:
    return f"There is no public strategy with the id {sid} (in `ids`)."


def _keys(db: Database, profiles: list[StrategyProfile]) -> list[readers.PerformanceKey]:
    return [page_data.performance_key(db, p) for p in profiles]


def _tag(build: str, what: str, db: Database, profiles: list[StrategyProfile], keys: list[Any]) -> str:
    named = [(p.id, p.name, p.benchmark, p.visibility) for p in profiles]
    return page_data.etag(build, what, db.ledger.leaderboard_version(), named, keys)


@get("/compare", include_in_schema=False)
async def compare_page(request: Request) -> Response:
    """The comparison page; ``add``/``pick`` (the add form) redirect to the page with the id appended."""
    db, cache, build = state(request)
    params = request.query_params
    raw, add = params.get("ids"), [*params.getall("add", []), *params.getall("pick", [])]

    def work() -> Answer:
        try:
            more = _added(raw, add)
            if more is not None:
                return Answer(b"", 303, headers={"Location": ids_link(more)})
            ids = parse_ids(raw) if raw is not None else []
        except BadParameter as exc:
            return _error(request, 400, "Bad request", exc.detail)
        profiles, missing = members_or_missing(db, ids)
        if missing is not None:
            return _error(request, 404, "Strategy not found", _not_found_message(missing))
        keys = _keys(db, profiles)
        tag = _tag(build, "compare.html", db, profiles, keys)
        headers = html_headers(tag)
        if page_data.not_modified(request.headers.get("if-none-match"), tag):
            return not_modified_answer(tag, headers)
        body = cache.bodies.get(tag)
        if body is None:
            data = comparison(load(db, cache, profiles, keys)) if profiles else None
            body = cache.bodies.put(tag, render(request, "compare.html", **_view(db, ids, data)))
        return Answer(body, headers=headers)

    return await serve(request, "compare", work)


@get("/p/compare", include_in_schema=False)
async def compare_json(request: Request) -> Response:
    """The comparison as JSON (``public_schema``: ``/p/compare``)."""
    db, cache, build = state(request)
    raw = request.query_params.get("ids")

    def work() -> Answer:
        ids = parse_ids(raw)  # BadParameter: the API's 400 {"detail": ...}
        profiles, missing = members_or_missing(db, ids)
        if missing is not None:
            body = page_data.encode_json({"detail": f"Strategy not found: {missing} (in `ids`)"})
            return Answer(body, 404, MediaType.JSON, json_headers())
        keys = _keys(db, profiles)
        tag = _tag(build, "compare.json", db, profiles, keys)
        headers = json_headers(tag)
        if page_data.not_modified(request.headers.get("if-none-match"), tag):
            return not_modified_answer(tag, headers)
        body = cache.bodies.get(tag) or cache.bodies.put(
            tag, page_data.encode_json(_finite(comparison(load(db, cache, profiles, keys))))
        )
        return Answer(body, media_type=MediaType.JSON, headers=headers)

    return await serve(request, "compare.json", work)


def _finite(value: Any) -> Any:
    """The answer with every float rounded (10 decimal places) and never NaN or infinite."""
    if isinstance(value, float):
        return round(value, 10) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def routes() -> list[Any]:
    """The page (with the pages' headers) and its JSON."""
    page = Router(
        path="/", route_handlers=[compare_page], response_headers=page_security_headers(), include_in_schema=False
    )
    return [page, compare_json]


__all__ = ["MIN_PAIRS", "comparison", "parse_ids", "routes"]
