"""What every page and /p/ handler of query_api shares: the computed answer, rendering, the cache
headers, and serving (the work in a worker thread, one ``page_served`` log event per request)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from anyio import to_thread
from litestar import Request, Response
from litestar.response import Stream

from botranks_domain.errors import DomainError
from libs.infra.db import Database
from libs.infra.web import API_CSP, CSP_HEADER, PAGE_CSP, domain_status

from .downloads import ThreadedChunks, register
from .page_data import PageCache

log = structlog.get_logger(service="query_api")

HTML = "text/html; charset=utf-8"


@dataclass
class Answer:
    """What a page handler computed (in a worker thread): body, status, headers, what to log."""

    body: bytes
    status: int = 200
    media_type: str = HTML
    headers: dict[str, str] | None = None
    strategy_id: Any = None
    viewer: str | None = None
    #: a streamed body instead of ``body`` (a download)
    chunks: ThreadedChunks | None = None


def render(request: Request, template: str, **context: Any) -> bytes:
    engine = request.app.template_engine
    assert engine is not None  # the app is made with template_config()
    return engine.get_template(template).render(**context).encode()


def headers_for(csp: str, tag: str | None, private: bool) -> dict[str, str]:
    headers = {CSP_HEADER: csp, "Cache-Control": ("private, no-cache" if private else "no-cache"), "Vary": "Cookie"}
    if tag:
        headers["ETag"] = tag
    return headers


def html_headers(tag: str | None = None, private: bool = False) -> dict[str, str]:
    return headers_for(PAGE_CSP, tag, private)


def json_headers(tag: str | None = None, private: bool = False) -> dict[str, str]:
    return headers_for(API_CSP, tag, private)


def not_modified_answer(tag: str, headers: dict[str, str]) -> Answer:
    return Answer(b"", 304, headers=headers)


async def serve(request: Request, page: str, work: Callable[[], Answer], started: float | None = None) -> Response:
    """Run ``work`` in a worker thread, answer it, and log one event (``started``: when the request's
    handling began, if before this)."""
    started = time.perf_counter() if started is None else started
    status, answer = 500, None
    try:
        answer = await to_thread.run_sync(work)
        status = answer.status
    except DomainError as exc:
        status = domain_status(exc)
        raise
    finally:
        if answer is None:  # an error: logged here with its status (a finished answer: by respond)
            _log(request, page, status, answer, started)
    return respond(request, page, answer, started)


def _log(request: Request, page: str, status: int, answer: Answer | None, started: float) -> None:
    log.info(
        "page_served",
        page=page,
        path=request.url.path,
        status=status,
        strategy_id=str(answer.strategy_id) if answer and answer.strategy_id else None,
        viewer=answer.viewer if answer else None,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )


def respond(request: Request, page: str, answer: Answer, started: float) -> Response:
    """The response of a finished ``answer`` (no worker thread: a cache hit answers from here), logged."""
    _log(request, page, answer.status, answer, started)
    if answer.status == 304:
        return Response(b"", status_code=304, headers=answer.headers)
    if answer.chunks is not None:
        return Stream(
            register(request, answer.chunks),
            status_code=answer.status,
            media_type=answer.media_type,
            headers=answer.headers,
        )
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type, headers=answer.headers)


def state(request: Request) -> tuple[Database, PageCache, str]:
    app_state = request.app.state
    return app_state.db, app_state.pages, app_state.build
