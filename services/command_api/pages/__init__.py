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

The package: ``rendering`` (templates, the CSRF field, error pages), ``sessions``, ``forms``,
and the pages: ``sign_in``, ``strategies`` (my strategies), ``keys`` (API keys: a new one shown once after a
redirect, revoking after a confirmation); here, the router. The site's header, favicon and stylesheet are the
public pages' (``rendering.SITE_TEMPLATES``, query_api's ``/static``).
"""

from __future__ import annotations

import hashlib

from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.static_files import create_static_files_router

from libs.infra.settings import Settings

from . import follows, profile
from .keys import create_key, keys_page, new_key_page, revoke_key, revoke_key_page
from .rendering import CSRF_COOKIE, PAGE_CSP, STATIC, page_error
from .sign_in import login_page, login_submit, logout, register_page, register_submit
from .strategies import create_strategy, strategies_page, update_settings


def csrf_config(settings: Settings) -> CSRFConfig:
    """The pages' CSRF settings; the signing secret is the same in every replica (see docs/NOTES.md)."""
    secret = hashlib.sha256(b"botranks-csrf\x00" + settings.database_url.encode()).hexdigest()
    return CSRFConfig(
        secret=secret, cookie_name=CSRF_COOKIE, cookie_path="/account", cookie_httponly=True, cookie_samesite="lax"
    )


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
            profile.set_handle,
            keys_page,
            create_key,
            new_key_page,
            revoke_key_page,
            revoke_key,
            *follows.HANDLERS,
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
