"""A strategy's API keys: the list, a new key (its plaintext shown this once) and revoking one."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog
from anyio import to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.response import Redirect

from botranks_domain.accounts import ApiKeyIn, StrategyProfile
from botranks_domain.errors import NotFound, NotOwner
from libs.infra.identity import Identity

from .forms import FormError, convert_form, form_field
from .rendering import NOTICES, render
from .sessions import require_user, signed_in_user, to_login

log = structlog.get_logger(service="command_api")


def _keys(identity: Identity, owner: UUID, strategy_id: UUID) -> tuple[StrategyProfile, list]:
    try:
        keys = identity.list_keys(owner, strategy_id)
    except (NotFound, NotOwner):
        raise NotFound(f"Strategy {strategy_id} not found") from None  # another's strategy: no existence leak
    profile = identity.profile(strategy_id)
    if profile is None:
        raise NotFound(f"Strategy {strategy_id} not found")
    return profile, keys


async def _keys_page(request: Request, user: UUID, strategy_id: UUID, status: int = 200, **context: Any) -> Response:
    strategy, keys = await to_thread.run_sync(_keys, request.app.state.db.identity, user, strategy_id)
    notice = NOTICES.get(request.query_params.get("done", "")) if status == 200 and "created" not in context else None
    return render(
        request,
        "keys.html",
        status=status,
        title=f"API keys · {strategy.name}",
        signed_in=True,
        strategy=strategy,
        keys=keys,
        notice=notice,
        **context,
    )


@get("/strategies/{strategy_id:uuid}/keys")
async def keys_page(request: Request, strategy_id: UUID) -> Response:
    user = await signed_in_user(request)
    if user is None:
        return to_login()
    return await _keys_page(request, user, strategy_id)


def _new_key(identity: Identity, owner: UUID, strategy_id: UUID, name: str):
    try:
        return identity.create_key(owner, strategy_id, name)
    except (NotFound, NotOwner):
        raise NotFound(f"Strategy {strategy_id} not found") from None


@post("/strategies/{strategy_id:uuid}/keys")
async def create_key(request: Request, state: State, strategy_id: UUID) -> Response:
    """The answer shows the plaintext key this once (the page is ``no-store``); the list never does."""
    user = await require_user(request)
    form = await request.form()
    name = form_field(form, "name").strip() or "key"
    try:
        convert_form({"name": name}, ApiKeyIn)
    except FormError as err:
        return await _keys_page(request, user, strategy_id, status=err.status, error=err.detail)
    created = await to_thread.run_sync(_new_key, state.db.identity, user, strategy_id, name)
    log.info("api_key_created", strategy_id=str(strategy_id), key_id=str(created.id), via="page")
    return await _keys_page(request, user, strategy_id, status=201, created=created)


def _revoke(identity: Identity, owner: UUID, strategy_id: UUID, key_id: UUID) -> None:
    try:
        identity.revoke_key(owner, strategy_id, key_id)
    except NotOwner:
        raise NotFound(f"Strategy {strategy_id} not found") from None


@post("/strategies/{strategy_id:uuid}/keys/{key_id:uuid}/revoke")
async def revoke_key(request: Request, state: State, strategy_id: UUID, key_id: UUID) -> Response:
    user = await require_user(request)
    await to_thread.run_sync(_revoke, state.db.identity, user, strategy_id, key_id)
    log.info("api_key_revoked", strategy_id=str(strategy_id), key_id=str(key_id), via="page")
    return Redirect(f"/account/strategies/{strategy_id}/keys?done=revoked", status_code=303)
