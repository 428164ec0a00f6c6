"""My strategies: the owner's strategies a page at a time, each with its settings form, and the
form that creates one."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog
from anyio import to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.response import Redirect

from botranks_domain.accounts import StrategyIn, StrategySettingsIn
from botranks_domain.errors import BadParameter, DomainError, NotFound, NotOwner
from libs.infra.identity import Identity

from ..accounts import change_strategy
from .forms import FormError, benchmark_symbol, choice, convert_form, currency_code, form_error, form_field
from .rendering import NOTICES, SHOW_POSITIONS, VISIBILITIES, render
from .sessions import require_user, signed_in_user, to_login

log = structlog.get_logger(service="command_api")


#: the fields of the create and settings forms (the settings form adds the profile's)
FIELDS = ("name", "visibility", "benchmark", "show_positions", "base_currency")
SETTINGS_FIELDS = (*FIELDS, "description", "tags")
NEW_STRATEGY = dict(zip(FIELDS, ("", "private", "SPY", "none", "USD"), strict=True))
#: strategies per page of /account (each carries its settings form)
PAGE_SIZE = 20
MAX_PAGE = 1_000_000


def _page_number(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise BadParameter(f"`page` must be a whole number from 1 to {MAX_PAGE}, got {raw[:40]!r}")
    return int(raw)


def _page_of(identity: Identity, owner: UUID, strategy_id: UUID) -> int:
    """The page of /account that shows ``strategy_id`` (1 if it is not the owner's)."""
    position = identity.owned_position(owner, strategy_id)
    return 1 if position is None else position // PAGE_SIZE + 1


def _page_link(page: int, done: str = "") -> str:
    query = "&".join(([f"page={page}"] if page > 1 else []) + ([f"done={done}"] if done else []))
    return f"/account?{query}" if query else "/account"


async def strategies_page_for(
    request: Request,
    user: UUID,
    status: int = 200,
    new: dict[str, str] | None = None,
    page: int | None = None,
    **context: Any,
) -> Response:
    """One page of the list with a settings form each, and the create form (``new``: what was typed,
    after an error); ``page`` defaults to the query's."""
    if page is None:
        page = _page_number(request.query_params.get("page"))
    identity, settings = request.app.state.db.identity, request.app.state.settings
    strategies, total = await to_thread.run_sync(identity.owned_profiles, user, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    context.setdefault("me", await to_thread.run_sync(identity.user, user))
    pages = max(1, -(-total // PAGE_SIZE))
    pager = {
        "page": page,
        "pages": pages,
        "total": total,
        "prev": _page_link(min(page, pages + 1) - 1) if page > 1 else None,
        "next": _page_link(page + 1) if page < pages else None,
    }
    limit = settings.max_strategies_per_account
    notice = NOTICES.get(request.query_params.get("done", "")) if status == 200 else None
    return render(
        request,
        "strategies.html",
        status=status,
        title="My strategies",
        signed_in=True,
        strategies=strategies,
        notice=notice,
        new=new or NEW_STRATEGY,
        pager=pager,
        limit=limit,
        at_limit=0 < limit <= total,
        **context,
    )


@get("/")
async def strategies_page(request: Request) -> Response:
    user = await signed_in_user(request)
    if user is None:
        return to_login()
    return await strategies_page_for(request, user)


def _create(identity: Identity, owner: UUID, data: StrategyIn, show_positions: str, max_owned: int) -> UUID:
    """Like ``POST /strategies`` (``accounts.new_strategy``), with ``show_positions`` in the same insert."""
    strategy_id, _ = identity.create_strategy(
        data.name,
        benchmark=data.benchmark,
        owner_id=owner,
        base_currency=data.base_currency,
        visibility=data.visibility,
        show_positions=show_positions,
        first_key=False,
        max_owned=max_owned,
    )
    return strategy_id


@post("/strategies")
async def create_strategy(request: Request, state: State) -> Response:
    user = await require_user(request)
    form = await request.form()
    new = {k: form_field(form, k) for k in FIELDS}
    try:
        visibility = choice(new["visibility"], VISIBILITIES, "visibility")
        show_positions = choice(new["show_positions"], SHOW_POSITIONS, "show_positions")
        fields = {"name": new["name"].strip(), "visibility": visibility}
        fields["benchmark"] = benchmark_symbol(new["benchmark"])
        if code := currency_code(new["base_currency"]):  # empty: the default, USD
            fields["base_currency"] = code
        data = convert_form(fields, StrategyIn)
        strategy_id = await to_thread.run_sync(
            _create, state.db.identity, user, data, show_positions, state.settings.max_strategies_per_account
        )
    except (DomainError, FormError) as exc:
        err = form_error(exc)
        return await strategies_page_for(request, user, status=err.status, create_error=err.detail, new=new, page=1)
    log.info("strategy_created", strategy_id=str(strategy_id), user_id=str(user), via="page")
    page = await to_thread.run_sync(_page_of, state.db.identity, user, strategy_id)
    return Redirect(f"{_page_link(page, 'created')}#strategy-{strategy_id}", status_code=303)


@post("/strategies/{strategy_id:uuid}/settings")
async def update_settings(request: Request, state: State, strategy_id: UUID) -> Response:
    user = await require_user(request)
    form = await request.form()
    typed = {k: form_field(form, k) for k in SETTINGS_FIELDS}
    try:
        changes = convert_form(
            {
                "name": typed["name"].strip(),
                "visibility": choice(typed["visibility"], VISIBILITIES, "visibility"),
                "benchmark": benchmark_symbol(typed["benchmark"]),
                "show_positions": choice(typed["show_positions"], SHOW_POSITIONS, "show_positions"),
                # empty: unchanged; a new one re-derives every figure in it
                "base_currency": currency_code(typed["base_currency"]) or None,
                "description": typed["description"].replace("\r\n", "\n").strip(),
                "tags": [t for t in typed["tags"].split(",") if t.strip()],
            },
            StrategySettingsIn,
        )
        await to_thread.run_sync(change_strategy, state.db, user, strategy_id, changes)
    except (NotFound, NotOwner):
        raise NotFound(f"Strategy {strategy_id} not found") from None  # another's strategy: no existence leak
    except (DomainError, FormError) as exc:
        err = form_error(exc)
        page = await to_thread.run_sync(_page_of, state.db.identity, user, strategy_id)
        return await strategies_page_for(
            request, user, status=err.status, settings_error=err.detail, failed_id=strategy_id, typed=typed, page=page
        )
    log.info("strategy_updated", strategy_id=str(strategy_id), user_id=str(user), via="page")
    page = await to_thread.run_sync(_page_of, state.db.identity, user, strategy_id)
    return Redirect(f"{_page_link(page, 'saved')}#strategy-{strategy_id}", status_code=303)
