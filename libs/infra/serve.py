"""Entry point shared by the two HTTP services: parse ``--host/--port``, log JSON, run uvicorn
(``BOTRANKS_API_WORKERS`` worker processes, each a whole app on the same port; their Prometheus
samples are summed through prometheus-client's multiprocess directory).

Every service stops within ``STOP_DEADLINE_S`` of a SIGTERM or SIGINT: requests in flight get
``GRACE_S``, background loops wake on the stop, and whatever still runs after the deadline (a
thread stuck in a database call, say) ends with the process (``exit_by_deadline``).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import importlib
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable

import structlog
import uvicorn
from litestar import Litestar
from uvicorn.config import STARTUP_FAILURE
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.supervisors.multiprocess import Multiprocess

from .logs import configure_logging
from .settings import Settings

#: how long a stopping service waits for its requests (and loops) in flight before cancelling them
GRACE_S = 0.3

#: the same for a daemon's loop (its work is transactional and idempotent: cut short, it is redone)
DAEMON_GRACE_S = 0.1

#: a service asked to stop is gone within this, whatever it was doing
STOP_DEADLINE_S = 0.9

_deadline_lock = threading.Lock()
_deadline_armed = False


def freeze_startup_heap() -> None:
    """Put what is alive once a service has started (its modules and their objects: ~84,000 in the
    projector) out of the cyclic GC's reach: it is never garbage, and every full collection walked all of
    it, ~50 ms with that process's loop stopped, a stall that lands on whatever request or projection is
    in flight. What the service makes afterwards is collected as usual (``gc.freeze``)."""
    gc.collect()
    gc.freeze()


def exit_by_deadline(signum: int = signal.SIGTERM, seconds: float = STOP_DEADLINE_S) -> None:
    """From the first call on, the process ends within ``seconds``: if it is still there then (the
    graceful stop ran out of time), it exits at once with status 128 + ``signum``."""
    global _deadline_armed
    with _deadline_lock:
        if _deadline_armed:
            return
        _deadline_armed = True
    # at exit, no collector passes over every module's objects (~0.2 s of the second): runs first
    atexit.register(gc.freeze)

    def expire() -> None:
        structlog.get_logger().warning("stop_deadline_exceeded", seconds=seconds)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - we are leaving anyway
                pass
        os._exit(128 + signum)  # what a shell reports for a death by that signal

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


async def run_until_stopped(
    run: Callable[[], Awaitable[None]], stop: Callable[[], None], grace: float = DAEMON_GRACE_S
) -> None:
    """``run()`` until it returns or SIGTERM/SIGINT arrives: then ``stop()`` (its loops wake and
    return), and ``run()`` is cancelled if it has not returned after ``grace``."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(run())
    stopping: list[int] = []

    def on_signal(signum: int) -> None:
        exit_by_deadline(signum)
        if not stopping:
            stopping.append(signum)
            stop()
            loop.call_later(grace, task.cancel)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await task
    except asyncio.CancelledError:
        if not stopping or not task.cancelled():
            raise


class _Server(uvicorn.Server):
    """uvicorn's server, with the stop deadline armed by the signal that stops it."""

    def handle_exit(self, sig: int, frame) -> None:
        exit_by_deadline(sig)
        super().handle_exit(sig, frame)


class _Workers(Multiprocess):
    """uvicorn's worker supervisor, stopping the workers as soon as the signal arrives (not at its
    next half-second poll)."""

    def __init__(self, config: uvicorn.Config, sockets: list) -> None:
        super().__init__(config, sockets)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)

    def _stop(self, signum: int, frame) -> None:
        exit_by_deadline(signum)
        self.should_exit.set()


def _deadline_on_signals() -> None:
    """In a worker process: arm the stop deadline before uvicorn's own handler of SIGTERM/SIGINT."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(signum)
        if callable(handler):

            def armed(sig, frame, handler=handler) -> None:
                exit_by_deadline(sig)
                handler(sig, frame)

            signal.signal(signum, armed)


_STOPPING_BODY = b'{"detail":"Service restarting, retry shortly"}'


def stopping_answers_503(app):
    """The app, answering 503 (Retry-After) instead of uvicorn's 500 to a request it cancels because
    the service stops and the request outlived ``GRACE_S`` (a retry is safe: writes are idempotent)."""

    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        started = False

        async def tracked(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, tracked)
        except asyncio.CancelledError:
            if started or not _deadline_armed:
                raise
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", b"1"),
                        (b"content-length", str(len(_STOPPING_BODY)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _STOPPING_BODY})

    return guarded


def behind_proxies(app, trusted_proxies: str):
    """The app as the client sees it when a trusted proxy (``BOTRANKS_TRUSTED_PROXIES``) forwards it.

    uvicorn's own ``ProxyHeadersMiddleware`` (what ``proxy_headers=True, forwarded_allow_ips=``
    installs) sets ``scope["scheme"]`` from X-Forwarded-Proto and ``scope["client"]`` from
    X-Forwarded-For, only for a peer in the list. In front of it, the first X-Forwarded-Host
    of such a peer replaces ``Host`` (uvicorn does not read that header), so the same-origin
    check sees the host the browser used. From any other peer all three headers are ignored.
    """
    proxied = ProxyHeadersMiddleware(app, trusted_hosts=trusted_proxies)
    trusted = proxied.trusted_hosts  # the very matcher uvicorn uses for the other two headers

    async def forwarded_host(scope, receive, send):
        if scope["type"] == "http":
            peer = scope.get("client")
            headers = scope.get("headers") or []
            forwarded = next((value for name, value in headers if name == b"x-forwarded-host"), None)
            if forwarded is not None and peer and peer[0] in trusted:
                host = forwarded.split(b",", 1)[0].strip()
                if host:
                    scope = {
                        **scope,
                        "headers": [(name, value) for name, value in headers if name != b"host"] + [(b"host", host)],
                    }
        await proxied(scope, receive, send)

    return forwarded_host


_APP_FACTORY = "BOTRANKS_APP_FACTORY"


def app_factory():
    """A worker's app (uvicorn calls it in each worker process): the service named in the environment."""
    module, _, name = os.environ[_APP_FACTORY].partition(":")
    settings = Settings.from_env().require_servers()
    configure_logging(module.split(".")[1], settings.log_level)
    if threading.current_thread() is threading.main_thread():
        _deadline_on_signals()
    app = getattr(importlib.import_module(module), name)(settings)
    return stopping_answers_503(behind_proxies(app, settings.trusted_proxies))


def serve(service: str, create_app: Callable[[Settings], Litestar], default_port: int) -> None:
    parser = argparse.ArgumentParser(description=f"BotRanks {service}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--workers", type=int, help="worker processes (default: BOTRANKS_API_WORKERS, else 1)")
    args = parser.parse_args()
    settings = Settings.from_env().require_servers()
    configure_logging(service, settings.log_level)
    workers = args.workers or settings.api_workers
    options = dict(
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        proxy_headers=False,  # proxy headers are applied by behind_proxies (plus X-Forwarded-Host)
        timeout_graceful_shutdown=GRACE_S,
    )
    if workers <= 1:
        app = stopping_answers_503(behind_proxies(create_app(settings), settings.trusted_proxies))
        server = _Server(uvicorn.Config(app, **options))
        try:
            server.run()
        except KeyboardInterrupt:  # uvicorn re-raises the SIGINT that stopped it
            pass
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    os.environ[_APP_FACTORY] = f"{create_app.__module__}:{create_app.__name__}"
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"botranks-{service}-metrics-")
    config = uvicorn.Config("libs.infra.serve:app_factory", factory=True, workers=workers, **options)
    _Workers(config, sockets=[config.bind_socket()]).run()
