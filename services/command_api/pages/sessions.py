"""The owner pages' sessions: who is signed in (the same cookie as ``POST /auth/login``), and a
session for an account that was just registered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from anyio import to_thread
from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Redirect

from botranks_domain.errors import NotSignedIn
from libs.infra.identity import Identity, email_throttle, new_secret
from libs.infra.settings import Settings

from ..account_routes import COOKIE, _secure


async def signed_in_user(request: Request) -> UUID | None:
    """The user of the session cookie, or None (no cookie, expired, signed out)."""
    try:
        return await to_thread.run_sync(request.app.state.db.identity.session_user, request.cookies.get(COOKIE))
    except NotSignedIn:
        return None


async def require_user(request: Request) -> UUID:
    """For POSTs: the signed-in user, or 401."""
    user = await signed_in_user(request)
    if user is None:
        raise NotSignedIn("Sign in first")
    return user


def to_login() -> Redirect:
    return Redirect("/account/login", status_code=303)


def session_cookie(request: Request, token: str, ttl: int) -> Cookie:
    """The same cookie as ``POST /auth/login``."""
    return Cookie(
        key=COOKIE, value=token, httponly=True, samesite="lax", secure=_secure(request), max_age=ttl, path="/"
    )


def open_session(identity: Identity, settings: Settings, user_id: UUID, email: str) -> str:
    """A session for an account that was just created (its password was just set: no second hash)."""
    token = new_secret()
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.session_ttl_s)
    identity.open_session(
        user_id,
        token,
        expires_at,
        email_throttle(email, settings.login_failures_per_window, settings.login_failure_window_s),
        None,
    )
    return token
