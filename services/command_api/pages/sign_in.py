"""Sign in, register and sign out as HTML forms (the rules of ``POST /auth/login`` and
``/auth/register``; a new account is signed in at once)."""

from __future__ import annotations

import structlog
from anyio import to_thread
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.response import Redirect

from botranks_domain.accounts import Credentials, Registration
from botranks_domain.errors import DomainError

from .. import accounts
from ..account_routes import COOKIE, _client, _secure
from .forms import FormError, convert_form, form_error, form_field
from .rendering import render
from .sessions import open_session, session_cookie, signed_in_user

log = structlog.get_logger(service="command_api")


@get("/login")
async def login_page(request: Request) -> Response:
    if await signed_in_user(request) is not None:
        return Redirect("/account", status_code=303)
    return render(request, "login.html", title="Sign in", email="")


@post("/login")
async def login_submit(request: Request, state: State) -> Response:
    form = await request.form()
    email = form_field(form, "email")
    try:
        creds = convert_form({"email": email, "password": form_field(form, "password")}, Credentials)
        token, user, _ = await accounts.login(
            state.db.identity, creds, state.settings, _client(request), state.hash_lane
        )
    except (DomainError, FormError) as exc:
        err = form_error(exc)
        return render(
            request,
            "login.html",
            status=err.status,
            headers=err.headers,
            title="Sign in",
            email=email,
            error=err.detail,
        )
    log.info("user_logged_in", user_id=str(user.id), via="page")
    cookie = session_cookie(request, token, state.settings.session_ttl_s)
    return Redirect("/account", status_code=303, cookies=[cookie])


@get("/register")
async def register_page(request: Request) -> Response:
    if await signed_in_user(request) is not None:
        return Redirect("/account", status_code=303)
    return render(
        request, "register.html", title="Create an account", email="", handle="", min_password=accounts.MIN_PASSWORD
    )


@post("/register")
async def register_submit(request: Request, state: State) -> Response:
    form = await request.form()
    email, handle = form_field(form, "email"), form_field(form, "handle").strip().lstrip("@")
    try:
        fields = {"email": email, "password": form_field(form, "password"), "handle": handle or None}
        creds = convert_form(fields, Registration)
        user = await accounts.register(state.db.identity, creds, state.settings, _client(request), state.hash_lane)
        token = await to_thread.run_sync(open_session, state.db.identity, state.settings, user.id, user.email)
    except (DomainError, FormError) as exc:
        err = form_error(exc)
        return render(
            request,
            "register.html",
            status=err.status,
            headers=err.headers,
            title="Create an account",
            email=email,
            handle=handle,
            min_password=accounts.MIN_PASSWORD,
            error=err.detail,
        )
    log.info("user_registered", user_id=str(user.id), via="page")
    cookie = session_cookie(request, token, state.settings.session_ttl_s)
    return Redirect("/account", status_code=303, cookies=[cookie])


@post("/logout")
async def logout(request: Request, state: State) -> Response:
    """Ends the session (if any), clears the cookie, back to the home page."""
    await to_thread.run_sync(state.db.identity.end_session, request.cookies.get(COOKIE))
    return Redirect(
        "/",
        status_code=303,
        cookies=[
            Cookie(key=COOKIE, value="", max_age=0, httponly=True, samesite="lax", secure=_secure(request), path="/")
        ],
    )
