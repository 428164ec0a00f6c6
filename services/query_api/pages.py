"""The subscribers' pages and the JSON they are made of, served by query_api.

HTML (server-rendered with Jinja2; charts drawn by plotly.js from a JSON data island):
  ``/``            the leaderboard of public strategies (sort, filters, 50 a page)
  ``/s/{id}``      a strategy's page
  ``/docs``        the API reference (Swagger UI 5, served from the openapi-ui-bundles package)
  ``/methodology`` how every figure is computed: docs/METHODOLOGY.md, rendered once (``methodology``)
JSON / downloads (read models only; ETag + If-None-Match → 304):
  ``/p/leaderboard``, ``/p/strategies/{id}``, ``/p/strategies/{id}/series``,
  ``/p/strategies/{id}/nav.csv``, ``/p/strategies/{id}/trades.csv``, ``/p/strategies/{id}/events.jsonl``
  (the downloads are streamed and capped: see ``downloads``; every page and /p/ answer is under the
  per-address rate limit)
Assets: ``/static/<name>?v=<hash>`` (see ``assets``), cached for a year.

A private strategy is the same 404 as an unknown id to everyone but its owner's session. None of
these routes is in the OpenAPI schema (``include_in_schema=False``). HTML answers carry the pages'
CSP (``libs.infra.web.PAGE_CSP``); JSON keeps the API's ``default-src 'none'``. One structlog
event per request: ``page_served`` with the page, strategy id, status, viewer and duration.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from litestar import MediaType, Request, Response, Router, get
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig

from botranks_domain.errors import BadParameter, NotFound, NotOwner
from botranks_domain.profiles import MARKETS
from botranks_domain.significance import Trials
from botranks_domain.views import LIVE_ONLY_MIN_SHARE, LIVE_REPORTING_S
from libs.infra.db import Database
from libs.infra.readmodel import stream_chain_events, stream_nav_rows
from libs.infra.web import page_security_headers

from . import assets, board_query, charts, formatting, order_pages, page_answers, page_data, profiles, trade_pages
from .board_query import LeaderboardQuery
from .downloads import download_slots, idle_timeout, nav_csv_chunks, prime
from .page_data import Access, PageCache
from .readers import PerformanceKey
from .serving import Answer, html_headers, json_headers, not_modified_answer, render, respond, serve, state

SESSION_COOKIE = "access_token"  # command_api's session cookie (services/command_api/account_routes.py)
NOT_FOUND_DETAIL = "Strategy not found"
NOT_PUBLISHED_DETAIL = "The owner of this strategy does not publish its events"
TRADES_NOT_PUBLISHED = "The owner of this strategy does not publish its trades"
#: leaderboard columns: (sort key, header, cell kind, its section of /methodology)
COLUMNS = [
    ("rank", "#", "rank", "leaderboard"),
    ("name", "Strategy", "name", "leaderboard"),
    ("dsr", "DSR", "prob", "dsr"),
    ("psr", "PSR", "prob", "significance"),
    ("sharpe", "Sharpe (95% interval)", "ratio", "significance"),
    ("total_return", "Total return", "pct", "return"),
    ("cagr", "CAGR", "pct", "return"),
    ("sortino", "Sortino", "ratio", "ratios"),
    ("max_drawdown", "Max drawdown", "pct", "risk"),
    ("volatility", "Volatility", "pct_unsigned", "risk"),
    ("track_days", "Track record (days)", "integer", "leaderboard"),
    ("last_activity", "Last activity", "when", "leaderboard"),
    ("live_share", "Reported live", "pct_unsigned", "leaderboard"),
    ("trades", "Trades", "integer", "trades"),
    ("win_rate", "Win rate", "pct_unsigned", "trades"),
    ("profit_factor", "Profit factor", "ratio", "trades"),
]


def template_config() -> TemplateConfig:
    """Jinja2 (litestar[jinja]) over ``templates/``, with the number filters and the asset URLs."""

    def configure(engine: JinjaTemplateEngine) -> None:
        env = engine.engine
        env.trim_blocks = env.lstrip_blocks = True
        env.filters.update(formatting.FILTERS)
        env.globals.update(
            asset_url=assets.url,
            sign_class=formatting.sign_class,
            ci_bar=formatting.ci_bar,
            strategy_charts=charts.strategy_charts,
            record_hint=formatting.record_hint,
            PAGE_SIZE=board_query.PAGE_SIZE,
            LIVE_REPORTING_MIN=LIVE_REPORTING_S // 60,
            LIVE_ONLY_MIN_SHARE=LIVE_ONLY_MIN_SHARE,
            markets=MARKETS,
        )

    return TemplateConfig(directory=assets.TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=configure)


# ---------------------------------------------------------------- HTML


def _leaderboard_view(request: Request, q: LeaderboardQuery, trials: Trials) -> dict[str, Any]:
    db, _, _ = state(request)
    board = board_query.leaderboard(db, q)
    return {
        "board": board,
        "ci_scale": formatting.ci_scale((row.sharpe_ci_95, row.sharpe) for row in board.items),
        "trials": trials,
        "q": q,
        "columns": COLUMNS,
        "pages": board_query.pages(board.total),
        "first_rank": q.offset + 1,
    }


@get("/", include_in_schema=False)
async def leaderboard_page(request: Request) -> Response:
    db, cache, build = state(request)
    params = request.query_params

    def work() -> Answer:
        try:
            q = board_query.leaderboard_query(params)
        except BadParameter as exc:
            body = render(request, "error.html", title="Bad request", status=400, message=exc.detail)
            return Answer(body, 400, headers=html_headers())
        trials, trials_version = db.ledger.trials_counted()  # the legend says N
        tag = page_data.etag(build, "leaderboard.html", db.ledger.leaderboard_version(), trials_version, q)
        headers = html_headers(tag)
        if page_data.not_modified(request.headers.get("if-none-match"), tag):
            return not_modified_answer(tag, headers)
        body = cache.bodies.get(tag) or cache.bodies.put(
            tag, render(request, "leaderboard.html", **_leaderboard_view(request, q, trials))
        )
        return Answer(body, headers=headers)

    return await serve(request, "leaderboard", work)


def _not_found_page(request: Request) -> Answer:
    """The one answer for an unknown id, a malformed id and somebody else's private strategy."""
    return Answer(render(request, "not_found.html"), 404, headers=html_headers())


def _strategy_view(
    db: Database, cache: PageCache, acc: Access, key, owner_record: dict[str, int] | None, asked: order_pages.PagesAsked
) -> dict[str, Any]:
    figures = cache.figures(key)
    sig = figures.performance.significance
    book = cache.trades(acc.profile.id, key.nav_version)
    row = db.ledger.leaderboard_row(acc.profile.id)
    return {
        "trades": trade_pages.view(book, figures.performance.trading, acc.publication, acc.cutoff, asked.trades),
        "orders": order_pages.view(db, acc.profile.id, acc.publication, acc.cutoff, asked.orders),
        "owner_record": owner_record,
        "ci_scale": formatting.ci_scale([(sig.sharpe_ci_95 if sig else None, figures.performance.sharpe_ratio)]),
        "profile": acc.profile,
        "access": acc,
        "perf": figures.performance,
        "figures": figures,
        "series_island": page_data.island(figures.series_json),
        "row": row,
        "about": profiles.about(acc.profile, row),
        "chain": cache.chain(acc.profile.id, key.nav_version),
        "chain_days_shown": page_data.CHAIN_DAYS_SHOWN,
        "activity": cache.activity(acc.profile.id, key.nav_version, acc.publication, acc.cutoff),
        "events_allowed": acc.publication != "none",
    }


@get("/s/{strategy_id:str}", include_in_schema=False)
async def strategy_page(request: Request, strategy_id: str) -> Response:
    db, cache, build = state(request)
    looked = await page_answers.look_up(request, strategy_id)
    acc = looked.access
    if acc is None:
        return respond(request, "strategy", _not_found_page(request), looked.started)
    try:
        page = order_pages.pages_asked(request.query_params)
    except BadParameter as exc:
        body = render(request, "error.html", title="Bad request", status=400, message=exc.detail)
        return respond(request, "strategy", Answer(body, 400, headers=html_headers()), looked.started)
    record = looked.look.owner_record if looked.look else None
    tag = looked.tag(build, "strategy.html", page, request.base_url)
    headers = html_headers(tag, private=acc.owner or acc.profile.visibility != "public")

    def compute() -> bytes:
        key = page_data.performance_key(db, acc.profile)
        view = _strategy_view(db, cache, acc, key, record, page)
        return render(request, "strategy.html", embed_base=request.base_url, **view)

    return await page_answers.cached_answer(request, "strategy", looked, tag, headers, MediaType.HTML, compute)


@get("/docs", include_in_schema=False)
async def docs_page(request: Request) -> Response:
    _, _, build = state(request)

    def work() -> Answer:
        tag = page_data.etag(build, "docs.html")
        headers = html_headers(tag)
        if page_data.not_modified(request.headers.get("if-none-match"), tag):
            return not_modified_answer(tag, headers)
        return Answer(render(request, "docs.html", spec_url="/schema/openapi.json"), headers=headers)

    return await serve(request, "docs", work)


@get("/methodology", include_in_schema=False)
async def methodology_page(request: Request) -> Response:
    """docs/METHODOLOGY.md, rendered once at start-up (``app.state.methodology``)."""
    _, _, build = state(request)
    doc = request.app.state.methodology

    def work() -> Answer:
        tag = page_data.etag(build, "methodology.html", doc.version)
        headers = html_headers(tag)
        if page_data.not_modified(request.headers.get("if-none-match"), tag):
            return not_modified_answer(tag, headers)
        return Answer(render(request, "methodology.html", doc=doc), headers=headers)

    return await serve(request, "methodology", work)


# ---------------------------------------------------------------- JSON and downloads


def _json_not_found() -> Answer:
    return Answer(page_data.encode_json({"detail": NOT_FOUND_DETAIL}), 404, MediaType.JSON, json_headers())


@get("/p/leaderboard", include_in_schema=False)
async def leaderboard_json(request: Request) -> Response:
    db, cache, build = state(request)
    params = request.query_params

    def work() -> Answer:
        q = board_query.leaderboard_query(params)
        tag = page_data.etag(build, "leaderboard.json", db.ledger.leaderboard_version(), q)
        headers = json_headers(tag)
        if page_data.not_modified(request.headers.get("if-none-match"), tag):
            return not_modified_answer(tag, headers)
        body = cache.bodies.get(tag)
        if body is None:
            board = board_query.leaderboard(db, q)
            body = cache.bodies.put(
                tag,
                page_data.encode_json(
                    {
                        "items": board.items,
                        "total": board.total,
                        "sort": board.sort,
                        "descending": board.descending,
                        "min_days": board.min_days,
                        "live_only": board.live_only,
                        "q": q.text,
                        "min_trades": q.min_trades,
                        "max_dd": q.max_dd,
                        "market": q.market,
                        "currency": q.currency,
                        "min_live": q.min_live,
                        "page": q.page,
                        "pages": board_query.pages(board.total),
                        "page_size": board_query.PAGE_SIZE,
                    }
                ),
            )
        return Answer(body, media_type=MediaType.JSON, headers=headers)

    return await serve(request, "leaderboard.json", work)


@dataclass(frozen=True)
class Body:
    """How a /p/strategies/{id}/… answer is made: its media type, extra headers, and its bytes."""

    media_type: str
    headers: Callable[[Access], dict[str, str]]
    make: Callable[[Database, PageCache, Access, PerformanceKey], bytes]


@dataclass(frozen=True)
class StreamedBody:
    """A :class:`Body` whose answer is streamed: its chunks, from ``make(..., idle_timeout_s)`` (never
    kept in the cache of finished answers)."""

    media_type: str
    headers: Callable[[Access], dict[str, str]]
    make: Callable[[Database, PageCache, Access, PerformanceKey, float | None], Generator[bytes, None, None]]


def _strategy_json(
    request: Request, strategy_id: str, what: str, made: Body | StreamedBody, key_holders: bool = False
) -> Callable[[], Answer]:
    """A /p/strategies/{id}/… handler's work: access (404 alike for unknown and private), ETag, 304,
    the body from the cache of finished answers when it is there."""
    db, cache, build = state(request)
    token = request.cookies.get(SESSION_COOKIE)
    authorization = request.headers.get("authorization") if key_holders else None
    idle = idle_timeout(request.app.state.settings)

    def work() -> Answer:
        sid = page_data.strategy_uuid(strategy_id)
        if sid is None:
            return _json_not_found()
        key_holder = False
        if authorization:
            try:
                db.identity.check_key(authorization, sid, request.app.state.settings.rate_limit_per_minute)
                key_holder = True
            except (NotOwner, NotFound):
                key_holder = False  # a key of another strategy is no credential here: judged as anyone
        acc = page_data.access(db, sid, token, key_holder)
        if acc is None:
            return _json_not_found()
        key = page_data.performance_key(db, acc.profile)
        tag = page_data.strategy_etag(build, what, acc, key, db.ledger.leaderboard_version())
        private = acc.owner or acc.profile.visibility != "public"
        if page_data.not_modified(request.headers.get("if-none-match"), tag):
            answer = not_modified_answer(tag, json_headers(tag, private))
        else:
            headers = {**json_headers(tag, private), **made.headers(acc)}
            if isinstance(made, StreamedBody):
                answer = Answer(
                    b"",
                    media_type=made.media_type,
                    headers=headers,
                    chunks=prime(made.make(db, cache, acc, key, idle), what),
                )
            else:
                body = cache.bodies.get(tag) or cache.bodies.put(tag, made.make(db, cache, acc, key))
                answer = Answer(body, media_type=made.media_type, headers=headers)
        answer.strategy_id, answer.viewer = sid, ("key" if key_holder else acc.viewer)
        return answer

    return work


def _summary(db: Database, cache: PageCache, acc: Access, key) -> bytes:
    figures = cache.figures(key)
    act = cache.activity(acc.profile.id, key.nav_version, acc.publication, acc.cutoff)
    p = acc.profile
    row = db.ledger.leaderboard_row(p.id)
    return page_data.encode_json(
        {
            "strategy": {
                "id": p.id,
                "name": p.name,
                "visibility": p.visibility,
                "benchmark": p.benchmark,
                "show_positions": p.show_positions,
                "created_at": p.created_at,
            },
            "profile": profiles.about_json(p, row),
            "viewer": acc.viewer,
            "publication": acc.publication,
            "published_before": acc.cutoff,
            "performance": figures.performance,
            "rank": row.rank if row and row.rank else None,
            "live_share": row.live_share if row else None,
            "orders": row.orders if row else None,
            "last_activity": row.last_activity if row else None,
            "chain": cache.chain(p.id, key.nav_version),
            "positions": act.holdings,
            "recent_orders": act.orders,
            "recent_cash": act.cash,
            "corporate_actions": act.splits,
        }
    )


def _series(db: Database, cache: PageCache, acc: Access, key) -> bytes:
    return cache.figures(key).series_json


def _nav_csv(
    db: Database, cache: PageCache, acc: Access, key: PerformanceKey, idle_timeout_s: float | None
) -> Generator[bytes, None, None]:
    return nav_csv_chunks(stream_nav_rows(db.ledger.datastore, acc.profile.id, idle_timeout_s=idle_timeout_s))


def _events(
    db: Database, cache: PageCache, acc: Access, key: PerformanceKey, idle_timeout_s: float | None
) -> Generator[bytes, None, None]:
    if acc.publication == "none":
        raise NotOwner(NOT_PUBLISHED_DETAIL)
    return stream_chain_events(db.ledger.datastore, acc.profile.id, acc.cutoff, idle_timeout_s=idle_timeout_s)


def _trades_csv(
    db: Database, cache: PageCache, acc: Access, key: PerformanceKey, idle_timeout_s: float | None
) -> Generator[bytes, None, None]:
    if acc.publication == "none":
        raise NotOwner(TRADES_NOT_PUBLISHED)
    return trade_pages.csv_chunks(cache.trades(acc.profile.id, key.nav_version), acc.publication, acc.cutoff)


def _attachment(kind: str, suffix: str) -> Callable[[Access], dict[str, str]]:
    return lambda acc: {"Content-Disposition": f'attachment; filename="{kind}-{acc.profile.id}.{suffix}"'}


SUMMARY = Body(MediaType.JSON, lambda acc: {}, _summary)
SERIES = Body(MediaType.JSON, lambda acc: {}, _series)
NAV_CSV = StreamedBody("text/csv", _attachment("nav", "csv"), _nav_csv)
TRADES_CSV = StreamedBody("text/csv", _attachment("trades", "csv"), _trades_csv)
EVENTS = StreamedBody("application/jsonl", _attachment("events", "jsonl"), _events)


async def _strategy_body(request: Request, strategy_id: str, page: str, what: str, made: Body) -> Response:
    """A /p/strategies/{id}/… answer kept whole (the summary, the series): from the gate's look."""
    db, cache, build = state(request)
    looked = await page_answers.look_up(request, strategy_id)
    acc = looked.access
    if acc is None:
        return respond(request, page, _json_not_found(), looked.started)
    tag = looked.tag(build, what)
    plain = json_headers(tag, acc.owner or acc.profile.visibility != "public")
    return await page_answers.cached_answer(
        request,
        page,
        looked,
        tag,
        {**plain, **made.headers(acc)},
        made.media_type,
        lambda: made.make(db, cache, acc, page_data.performance_key(db, acc.profile)),
        not_modified_headers=plain,
    )


@get("/p/strategies/{strategy_id:str}", include_in_schema=False)
async def strategy_json(request: Request, strategy_id: str) -> Response:
    return await _strategy_body(request, strategy_id, "strategy.json", "summary", SUMMARY)


@get("/p/strategies/{strategy_id:str}/series", include_in_schema=False)
async def series_json(request: Request, strategy_id: str) -> Response:
    return await _strategy_body(request, strategy_id, "series.json", "series", SERIES)


@get(
    "/p/strategies/{strategy_id:str}/nav.csv",
    include_in_schema=False,
    middleware=[download_slots],
    opt={"download": True},
)
async def nav_csv(request: Request, strategy_id: str) -> Response:
    return await serve(request, "nav.csv", _strategy_json(request, strategy_id, "nav.csv", NAV_CSV))


@get(
    "/p/strategies/{strategy_id:str}/trades.csv",
    include_in_schema=False,
    middleware=[download_slots],
    opt={"download": True},
)
async def trades_csv(request: Request, strategy_id: str) -> Response:
    return await serve(request, "trades.csv", _strategy_json(request, strategy_id, "trades.csv", TRADES_CSV))


@get(
    "/p/strategies/{strategy_id:str}/events.jsonl",
    include_in_schema=False,
    middleware=[download_slots],
    opt={"download": True},
)
async def events_jsonl(request: Request, strategy_id: str) -> Response:
    return await serve(
        request, "events.jsonl", _strategy_json(request, strategy_id, "events.jsonl", EVENTS, key_holders=True)
    )


# ---------------------------------------------------------------- static assets


@get("/static/{name:str}", include_in_schema=False, sync_to_thread=False)
def static_asset(request: Request, name: str) -> Response:
    found = assets.asset(name)
    if found is None:
        return Response({"detail": "Not found"}, status_code=404, media_type=MediaType.JSON)
    versioned = request.query_params.get("v") == found.version
    tag = f'"{found.version}"'
    headers = {"Cache-Control": assets.IMMUTABLE if versioned else assets.SHORT, "ETag": tag, "Vary": "Accept-Encoding"}
    if page_data.not_modified(request.headers.get("if-none-match"), tag):
        return Response(b"", status_code=304, headers=headers)
    body = found.body
    if found.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = found.gzipped, "gzip"
    return Response(body, media_type=found.media_type, headers=headers)


def routes() -> list[Any]:
    """The pages (with the pages' CSP as their layer default) and their data."""
    html = Router(
        path="/",
        route_handlers=[leaderboard_page, strategy_page, docs_page, methodology_page],
        response_headers=page_security_headers(),
        include_in_schema=False,
    )
    return [html, leaderboard_json, strategy_json, series_json, nav_csv, trades_csv, events_jsonl, static_asset]


__all__ = ["routes", "template_config"]
