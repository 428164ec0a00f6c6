"""A strategy's API keys: the list, a new key (its plaintext shown once) and revoking one (after a confirmation).

A new key is post/redirect/get: ``POST .../keys`` creates it and answers 303 to the key's "new key"
page, carrying the plaintext in a cookie that only that page receives (:func:`_plaintext_cookie`:
HttpOnly, SameSite=Strict, Secure over HTTPS, ``Path`` = that page, 5 minutes). The page shows it
and clears the cookie in the same answer (``no-store``): reloading it shows "shown once" and never
creates a key (a GET creates nothing). Nothing is kept on the server (any replica serves the page)
and the plaintext never sits in a URL.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog
from anyio import to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.response import Redirect

from botranks_domain.accounts import ApiKeyIn, ApiKeyInfo, StrategyProfile
from botranks_domain.errors import NotFound, NotOwner
from libs.infra.identity import Identity

from ..account_routes import _secure
from .forms import FormError, convert_form, form_field
from .rendering import NOTICES, render
from .sessions import require_user, signed_in_user, to_login

log = structlog.get_logger(service="command_api")

#: the cookie that carries a new key's plaintext from the POST to the one page that shows it
NEW_KEY_COOKIE = "botranks_new_key"
NEW_KEY_COOKIE_TTL_S = 300
NO_STORE = {"Cache-Control": "no-store"}


def _keys_url(strategy_id: UUID) -> str:
    return f"/account/strategies/{strategy_id}/keys"


def _new_key_url(strategy_id: UUID, key_id: UUID) -> str:
    return f"{_keys_url(strategy_id)}/{key_id}/new"


def _plaintext_cookie(request: Request, strategy_id: UUID, key_id: UUID, plaintext: str) -> Cookie:
    return Cookie(
        key=NEW_KEY_COOKIE,
        value=plaintext,
        path=_new_key_url(strategy_id, key_id),
        max_age=NEW_KEY_COOKIE_TTL_S,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def _keys(identity: Identity, owner: UUID, strategy_id: UUID) -> tuple[StrategyProfile, list]:
    try:
        keys = identity.list_keys(owner, strategy_id)
    except (NotFound, NotOwner):
        raise NotFound(f"Strategy {strategy_id} not found") from None  # another's strategy: no existence leak
    profile = identity.profile(strategy_id)
    if profile is None:
        raise NotFound(f"Strategy {strategy_id} not found")
    return profile, keys


def _key(identity: Identity, owner: UUID, strategy_id: UUID, key_id: UUID) -> tuple[StrategyProfile, ApiKeyInfo]:
    strategy, keys = _keys(identity, owner, strategy_id)
    for key in keys:
        if key.id == key_id:
            return strategy, key
    raise NotFound(f"API key {key_id} not found")


async def _keys_page(request: Request, user: UUID, strategy_id: UUID, status: int = 200, **context: Any) -> Response:
    strategy, keys = await to_thread.run_sync(_keys, request.app.state.db.identity, user, strategy_id)
    notice = NOTICES.get(request.query_params.get("done", "")) if status == 200 else None
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
    """303 to the new key's page, the plaintext in a cookie for that page only; the list never shows it."""
    user = await require_user(request)
    form = await request.form()
    name = form_field(form, "name").strip() or "key"
    try:
        convert_form({"name": name}, ApiKeyIn)
    except FormError as err:
        return await _keys_page(request, user, strategy_id, status=err.status, error=err.detail)
    created = await to_thread.run_sync(_new_key, state.db.identity, user, strategy_id, name)
    log.info("api_key_created", strategy_id=str(strategy_id), key_id=str(created.id), via="page")
    return Redirect(
        _new_key_url(strategy_id, created.id),
        status_code=303,
        cookies=[_plaintext_cookie(request, strategy_id, created.id, created.plaintext)],
        headers=NO_STORE,
    )


@get("/strategies/{strategy_id:uuid}/keys/{key_id:uuid}/new")
async def new_key_page(request: Request, strategy_id: UUID, key_id: UUID) -> Response:
    """The new key's plaintext, once: from its cookie, which this answer clears. Without the cookie
    (a reload, another browser, later) the page says it was shown once; it never creates a key."""
    user = await signed_in_user(request)
    if user is None:
        return to_login()
    strategy, key = await to_thread.run_sync(_key, request.app.state.db.identity, user, strategy_id, key_id)
    carried = request.cookies.get(NEW_KEY_COOKIE)
    # only a live key's own plaintext (its prefix: a planted cookie cannot show another string)
    plaintext = carried if carried and key.revoked_at is None and carried.startswith(key.key_prefix) else None
    response = render(
        request,
        "key_new.html",
        headers=NO_STORE,
        title=f"New key · {strategy.name}",
        signed_in=True,
        strategy=strategy,
        key=key,
        plaintext=plaintext,
    )
    if carried is not None:
        response.delete_cookie(NEW_KEY_COOKIE, path=_new_key_url(strategy_id, key_id))
    return response


def _revoke(identity: Identity, owner: UUID, strategy_id: UUID, key_id: UUID) -> None:
    try:
        identity.revoke_key(owner, strategy_id, key_id)
    except NotOwner:
        raise NotFound(f"Strategy {strategy_id} not found") from None


@get("/strategies/{strategy_id:uuid}/keys/{key_id:uuid}/revoke")
async def revoke_key_page(request: Request, strategy_id: UUID, key_id: UUID) -> Response:
    """The confirmation: which key, what revoking does, and the form that does it (no script needed)."""
    user = await signed_in_user(request)
    if user is None:
        return to_login()
    strategy, key = await to_thread.run_sync(_key, request.app.state.db.identity, user, strategy_id, key_id)
    return render(
        request, "key_revoke.html", title=f"Revoke a key · {strategy.name}", signed_in=True, strategy=strategy, key=key
    )


@post("/strategies/{strategy_id:uuid}/keys/{key_id:uuid}/revoke")
async def revoke_key(request: Request, state: State, strategy_id: UUID, key_id: UUID) -> Response:
    user = await require_user(request)
    await to_thread.run_sync(_revoke, state.db.identity, user, strategy_id, key_id)
    log.info("api_key_revoked", strategy_id=str(strategy_id), key_id=str(key_id), via="page")
    return Redirect(f"{_keys_url(strategy_id)}?done=revoked", status_code=303)
