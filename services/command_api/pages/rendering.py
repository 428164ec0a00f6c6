"""Rendering the owner pages: their templates, the constants the forms share, the CSRF field of
every form, and errors as an HTML page (or the API's JSON when the client prefers it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import PermissionDeniedException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup

from botranks_domain.currency import CURRENCIES
from libs.infra.web import SECURITY_HEADERS, error_response
from services.query_api import assets as site_assets

HERE = Path(__file__).resolve().parent.parent  # services/command_api: the templates and assets live there
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
#: the site's header (``_site_header.html``), favicon and stylesheet are the public pages' own (one copy):
#: their templates are read after ours, their assets linked at query_api's ``/static`` (the front door's)
SITE_TEMPLATES = site_assets.TEMPLATES_DIR

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self';"
    " frame-ancestors 'none'"
)
CSRF_COOKIE = "botranks_csrf"
CSRF_FIELD = "_csrf_token"  # the form field Litestar's CSRFMiddleware reads
CSRF_REFUSED = "CSRF token verification failed"  # its 403's detail
VISIBILITIES = ("private", "public")
SHOW_POSITIONS = ("none", "delayed", "live")
#: the base currencies a strategy may have: the common ones first, then every other code A-Z (the forms' datalist)
COMMON_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD")
CURRENCY_CODES = (*COMMON_CURRENCIES, *sorted(CURRENCIES - set(COMMON_CURRENCIES)))
#: the only status lines a redirect may ask a page to show (never text from the query string)
NOTICES = {
    "created": "Strategy created.",
    "saved": "Settings saved.",
    "revoked": "Key revoked.",
    "handle": "Public handle saved.",
}

#: the header's link marked as the current page, by template (other signed-in pages: "My strategies")
NAV_CURRENT = {"login.html": "login", "register.html": "register"}

engine = JinjaTemplateEngine(directory=[TEMPLATES, SITE_TEMPLATES])
engine.engine.globals["asset_url"] = site_assets.url


def _csrf_input(request: Request) -> Markup:
    token = ScopeState.from_scope(request.scope).csrf_token
    token = token if isinstance(token, str) else ""
    return Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD, token)


def render(
    request: Request, template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> Response:
    context.setdefault("signed_in", False)
    context.setdefault("nav_current", NAV_CURRENT.get(template, "account" if context["signed_in"] else None))
    html = engine.get_template(f"account/{template}").render(
        request=request,
        csrf_input=_csrf_input(request),
        visibilities=VISIBILITIES,
        show_positions_choices=SHOW_POSITIONS,
        currency_codes=CURRENCY_CODES,
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
