"""Owner pages: server-rendered HTML for people (sign in / register / sign out, "my strategies",
API keys), on top of the same rules as the JSON accounts API (``accounts.py``, ``db.identity``).

Every route lives under ``/account`` in one :class:`Router` that carries what HTML needs and
JSON must not get:

- Litestar's ``CSRFMiddleware`` (double-submit: an HttpOnly ``botranks_csrf`` cookie, path
  ``/account``, and the hidden ``_csrf_token`` field of every form; a POST without both, or
  with two that differ, is 403). The JSON routes (``/auth``, ``/strategies``, ``/api/v1``) are
  outside the router and keep their curl flows; the app-wide ``cross_site_guard`` (Origin /
  Sec-Fetch-Site) still runs first for these pages too.
- The page CSP (:data:`PAGE_CSP`) instead of the API's ``default-src 'none'``.
- Errors as an HTML page with the status (``{"detail"}`` JSON when the client prefers JSON).

Not signed in: GET pages redirect (303) to ``/account/login``; POSTs are 401.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import structlog
from anyio import to_thread
from litestar import MediaType, Request, Response, Router, get, post
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader, Cookie, ResponseHeader, State
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup

from botranks_domain.accounts import ApiKeyIn, Credentials, StrategyIn, StrategyProfile, StrategySettingsIn
from botranks_domain.errors import BadParameter, DomainError, NotFound, NotOwner, NotSignedIn
from botranks_domain.model import normalize_symbol
from libs.infra.identity import Identity, email_throttle, new_secret
from libs.infra.settings import Settings
from libs.infra.web import SECURITY_HEADERS, domain_status, error_response, validation_detail

from . import accounts
from .account_routes import COOKIE, _client, _secure

log = structlog.get_logger(service="command_api")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self';"
    " frame-ancestors 'none'"
)
CSRF_COOKIE = "botranks_csrf"
CSRF_FIELD = "_csrf_token"  # the form field Litestar's CSRFMiddleware reads
CSRF_REFUSED = "CSRF token verification failed"  # its 403's detail
VISIBILITIES = ("private", "public")
SHOW_POSITIONS = ("none", "delayed", "live")
#: the only status lines a redirect may ask a page to show (never text from the query string)
NOTICES = {"created": "Strategy created.", "saved": "Settings saved.", "revoked": "Key revoked."}

engine = JinjaTemplateEngine(directory=TEMPLATES)


def csrf_config(settings: Settings) -> CSRFConfig:
    """The pages' CSRF settings; the signing secret is the same in every replica (see docs/NOTES.md)."""
    secret = hashlib.sha256(b"botranks-csrf\x00" + settings.database_url.encode()).hexdigest()
    return CSRFConfig(
        secret=secret, cookie_name=CSRF_COOKIE, cookie_path="/account", cookie_httponly=True, cookie_samesite="lax"
    )


# ---------------------------------------------------------------- rendering


def _csrf_input(request: Request) -> Markup:
    token = ScopeState.from_scope(request.scope).csrf_token
    token = token if isinstance(token, str) else ""
    return Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD, token)


def render(
    request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> Response:
    context.setdefault("signed_in", False)
    html = engine.get_template(f"account/{template}").render(
        request=request,
        csrf_input=_csrf_input(request),
        visibilities=VISIBILITIES,
        show_positions_choices=SHOW_POSITIONS,
        **context,
    )
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=headers)


def _wants_json(request: Request) -> bool:
    return request.accept.best_match(["text/html", "application/json"], default="text/html") == "application/json"


def page_error(request: Request, exc: Exception) -> Response:
    """Errors of the pages (CSRF and cross-site refusals included): an HTML page, or the API's JSON."""
    answer = error_response(request, exc)  # status, detail, headers (and the log line) as for the API
    if _wants_json(request):
        return answer
    status, detail = answer.status_code or 500, answer.content["detail"]
    if isinstance(exc, PermissionDeniedException) and exc.detail == CSRF_REFUSED:
        detail = "The form has expired or did not come from this site. Reload the page and try again."
    # an exception handler's answer gets none of the layers' response headers: set the pages' own
    headers = {
        **{h.name: h.value for h in SECURITY_HEADERS},
        **(answer.headers or {}),
        "Content-Security-Policy": PAGE_CSP,
        "Referrer-Policy": "same-origin",
    }
    return render(
        request, "error.html", status=status, headers=headers, title=f"Error {status}", code=status, detail=detail
    )


# ---------------------------------------------------------------- sessions


async def _signed_in(request: Request) -> UUID | None:
    """The user of the session cookie, or None (no cookie, expired, signed out)."""
    try:
        return await to_thread.run_sync(request.app.state.db.identity.session_user, request.cookies.get(COOKIE))
    except NotSignedIn:
        return None


async def _require_user(request: Request) -> UUID:
    """For POSTs: the signed-in user, or 401."""
    user = await _signed_in(request)
    if user is None:
        raise NotSignedIn("Sign in first")
    return user


def _to_login() -> Redirect:
    return Redirect("/account/login", status_code=303)


def _session_cookie(request: Request, token: str, ttl: int) -> Cookie:
    """The same cookie as ``POST /auth/login``."""
    return Cookie(
        key=COOKIE, value=token, httponly=True, samesite="lax", secure=_secure(request), max_age=ttl, path="/"
    )


def _open_session(identity: Identity, settings: Settings, user_id: UUID, email: str) -> str:
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


# ---------------------------------------------------------------- forms


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _convert(data: dict[str, Any], kind: type) -> Any:
    """A form as a domain struct; its rules broken → the 422 of the JSON API, naming the field."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise _FormError(422, validation_detail(exc)) from None


class _FormError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def _form_error(exc: DomainError | _FormError) -> _FormError:
    if isinstance(exc, _FormError):
        return exc
    return _FormError(domain_status(exc), exc.detail, exc.headers or None)


def _benchmark(raw: str) -> str:
    raw = raw.strip()
    return normalize_symbol(raw, "benchmark") if raw else ""


def _choice(raw: str, allowed: tuple[str, ...], name: str) -> str:
    if raw not in allowed:
        raise _FormError(422, f"`{name}` must be one of: {', '.join(allowed)}")
    return raw


# ---------------------------------------------------------------- sign in, register, sign out


@get("/login")
async def login_page(request: Request) -> Response:
    if await _signed_in(request) is not None:
        return Redirect("/account", status_code=303)
    return render(request, "login.html", title="Sign in", email="")


@post("/login")
async def login_submit(request: Request, state: State) -> Response:
    form = await request.form()
    email = _field(form, "email")
    try:
        creds = _convert({"email": email, "password": _field(form, "password")}, Credentials)
        token, user, _ = await accounts.login(
            state.db.identity, creds, state.settings, _client(request), state.hash_lane
        )
    except (DomainError, _FormError) as exc:
        err = _form_error(exc)
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
    cookie = _session_cookie(request, token, state.settings.session_ttl_s)
    return Redirect("/account", status_code=303, cookies=[cookie])


@get("/register")
async def register_page(request: Request) -> Response:
    if await _signed_in(request) is not None:
        return Redirect("/account", status_code=303)
    return render(request, "register.html", title="Create an account", email="", min_password=accounts.MIN_PASSWORD)


@post("/register")
async def register_submit(request: Request, state: State) -> Response:
    form = await request.form()
    email = _field(form, "email")
    try:
        creds = _convert({"email": email, "password": _field(form, "password")}, Credentials)
        user = await accounts.register(state.db.identity, creds, state.settings, _client(request), state.hash_lane)
        token = await to_thread.run_sync(_open_session, state.db.identity, state.settings, user.id, user.email)
    except (DomainError, _FormError) as exc:
        err = _form_error(exc)
        return render(
            request,
            "register.html",
            status=err.status,
            headers=err.headers,
            title="Create an account",
            email=email,
            min_password=accounts.MIN_PASSWORD,
            error=err.detail,
        )
    log.info("user_registered", user_id=str(user.id), via="page")
    cookie = _session_cookie(request, token, state.settings.session_ttl_s)
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


# ---------------------------------------------------------------- my strategies


NEW_STRATEGY = {"name": "", "visibility": "private", "benchmark": "SPY", "show_positions": "none"}
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


async def _strategies_page(
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
    user = await _signed_in(request)
    if user is None:
        return _to_login()
    return await _strategies_page(request, user)


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
    user = await _require_user(request)
    form = await request.form()
    new = {k: _field(form, k) for k in ("name", "visibility", "benchmark", "show_positions")}
    try:
        visibility = _choice(new["visibility"], VISIBILITIES, "visibility")
        show_positions = _choice(new["show_positions"], SHOW_POSITIONS, "show_positions")
        data = _convert(
            {"name": new["name"].strip(), "visibility": visibility, "benchmark": _benchmark(new["benchmark"])},
            StrategyIn,
        )
        strategy_id = await to_thread.run_sync(
            _create, state.db.identity, user, data, show_positions, state.settings.max_strategies_per_account
        )
    except (DomainError, _FormError) as exc:
        err = _form_error(exc)
        return await _strategies_page(request, user, status=err.status, create_error=err.detail, new=new, page=1)
    log.info("strategy_created", strategy_id=str(strategy_id), user_id=str(user), via="page")
    page = await to_thread.run_sync(_page_of, state.db.identity, user, strategy_id)
    return Redirect(f"{_page_link(page, 'created')}#strategy-{strategy_id}", status_code=303)


@post("/strategies/{strategy_id:uuid}/settings")
async def update_settings(request: Request, state: State, strategy_id: UUID) -> Response:
    user = await _require_user(request)
    form = await request.form()
    typed = {k: _field(form, k) for k in ("name", "visibility", "benchmark", "show_positions")}
    try:
        changes = _convert(
            {
                "name": typed["name"].strip(),
                "visibility": _choice(typed["visibility"], VISIBILITIES, "visibility"),
                "benchmark": _benchmark(typed["benchmark"]),
                "show_positions": _choice(typed["show_positions"], SHOW_POSITIONS, "show_positions"),
            },
            StrategySettingsIn,
        )
        await to_thread.run_sync(state.db.identity.update_strategy, user, strategy_id, changes)
    except (NotFound, NotOwner):
        raise NotFound(f"Strategy {strategy_id} not found") from None  # another's strategy: no existence leak
    except (DomainError, _FormError) as exc:
        err = _form_error(exc)
        page = await to_thread.run_sync(_page_of, state.db.identity, user, strategy_id)
        return await _strategies_page(
            request, user, status=err.status, settings_error=err.detail, failed_id=strategy_id, typed=typed, page=page
        )
    log.info("strategy_updated", strategy_id=str(strategy_id), user_id=str(user), via="page")
    page = await to_thread.run_sync(_page_of, state.db.identity, user, strategy_id)
    return Redirect(f"{_page_link(page, 'saved')}#strategy-{strategy_id}", status_code=303)


# ---------------------------------------------------------------- API keys


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
    user = await _signed_in(request)
    if user is None:
        return _to_login()
    return await _keys_page(request, user, strategy_id)


def _new_key(identity: Identity, owner: UUID, strategy_id: UUID, name: str):
    try:
        return identity.create_key(owner, strategy_id, name)
    except (NotFound, NotOwner):
        raise NotFound(f"Strategy {strategy_id} not found") from None


@post("/strategies/{strategy_id:uuid}/keys")
async def create_key(request: Request, state: State, strategy_id: UUID) -> Response:
    """The answer shows the plaintext key this once (the page is ``no-store``); the list never does."""
    user = await _require_user(request)
    form = await request.form()
    name = _field(form, "name").strip() or "key"
    try:
        _convert({"name": name}, ApiKeyIn)
    except _FormError as err:
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
    user = await _require_user(request)
    await to_thread.run_sync(_revoke, state.db.identity, user, strategy_id, key_id)
    log.info("api_key_revoked", strategy_id=str(strategy_id), key_id=str(key_id), via="page")
    return Redirect(f"/account/strategies/{strategy_id}/keys?done=revoked", status_code=303)


# ---------------------------------------------------------------- the router


def routers(settings: Settings) -> list[Router]:
    """``/account`` (pages, CSRF, page CSP) and ``/account/static`` (the pages' stylesheet)."""
    pages = Router(
        path="/account",
        route_handlers=[
            login_page,
            login_submit,
            register_page,
            register_submit,
            logout,
            strategies_page,
            create_strategy,
            update_settings,
            keys_page,
            create_key,
            revoke_key,
        ],
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf_config(settings))],
        response_headers=[
            ResponseHeader(name="Content-Security-Policy", value=PAGE_CSP),
            # forms post with a real Origin (under no-referrer browsers send "null")
            ResponseHeader(name="Referrer-Policy", value="same-origin"),
        ],
        exception_handlers={Exception: page_error},
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/account/static",
        directories=[STATIC],
        name="account_static",
        cache_control=CacheControlHeader(max_age=3600, public=True),
    )
    return [pages, static]
