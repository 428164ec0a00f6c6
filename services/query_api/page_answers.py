"""A strategy's page and its JSON (``/s/{id}``, ``/p/strategies/{id}``, ``…/series``) from the cache of
finished answers, keyed by what ``libs.infra.page_gate`` read for the request in its batch's round trip:
the profile, the owner's record, the viewer's session and the versions of the NAV, the trials, the board and
the price cache. A hit (or a 304) answers on the event loop with no other database read and no worker
thread; a miss computes the answer as before, in a worker thread, from data at least as new as its key."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Request, Response

from libs.infra.page_gate import PageLook

from . import page_data
from .page_data import Access
from .serving import Answer, not_modified_answer, respond, serve, state

SESSION_COOKIE = "access_token"


@dataclass(frozen=True)
class Looked:
    """A request's strategy as the gate read it, and what this viewer may see of it (None: a 404)."""

    strategy_id: UUID | None
    look: PageLook | None
    access: Access | None
    started: float

    def tag(self, build: str, what: str, *extra: Any) -> str:
        """The answer's ETag: the build, what it is, the viewer and what it may see, every version read."""
        assert self.access is not None and self.look is not None
        acc = self.access
        return page_data.etag(build, what, acc.viewer, acc.publication, acc.cutoff, *self.look.versions(), *extra)


async def look_up(request: Request, strategy_id: str) -> Looked:
    """The gate's look at the strategy of the path for this viewer (its session cookie)."""
    started = time.perf_counter()
    sid = page_data.strategy_uuid(strategy_id)
    if sid is None:
        return Looked(None, None, None, started)
    look = await request.app.state.page_gate.look(sid, request.cookies.get(SESSION_COOKIE))
    profile = look.profile
    owner = profile is not None and look.session_user is not None and profile.owner_id == look.session_user
    return Looked(sid, look, page_data.access_of(profile, owner), started)


async def cached_answer(
    request: Request,
    page: str,
    looked: Looked,
    tag: str,
    headers: dict[str, str],
    media_type: str,
    compute: Callable[[], bytes],
    not_modified_headers: dict[str, str] | None = None,
) -> Response:
    """The answer under ``tag``: 304 when the client has it, the cached bytes when this process has them
    (both on the event loop), else ``compute()`` in a worker thread, kept under ``tag``."""
    _, cache, _ = state(request)
    assert looked.access is not None

    def finished(answer: Answer) -> Answer:
        answer.strategy_id, answer.viewer = looked.strategy_id, looked.access.viewer if looked.access else None
        return answer

    if page_data.not_modified(request.headers.get("if-none-match"), tag):
        answer = not_modified_answer(tag, not_modified_headers or headers)
        return respond(request, page, finished(answer), looked.started)
    body = cache.bodies.get(tag)
    if body is not None:
        return respond(request, page, finished(Answer(body, media_type=media_type, headers=headers)), looked.started)

    def work() -> Answer:
        made = cache.bodies.get(tag) or cache.bodies.put(tag, compute())
        return finished(Answer(made, media_type=media_type, headers=headers))

    return await serve(request, page, work, looked.started)
