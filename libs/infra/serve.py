"""Entry point shared by the two HTTP services: parse ``--host/--port``, log JSON, run uvicorn
(``BOTRANKS_API_WORKERS`` worker processes, each a whole app on the same port; their Prometheus
samples are summed through prometheus-client's multiprocess directory)."""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile
from typing import Callable

import uvicorn
from litestar import Litestar
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .logs import configure_logging
from .settings import Settings


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
                    scope = {**scope, "headers": [(name, value) for name, value in headers if name != b"host"]
                             + [(b"host", host)]}
        await proxied(scope, receive, send)

    return forwarded_host


_APP_FACTORY = "BOTRANKS_APP_FACTORY"


def app_factory():
    """A worker's app (uvicorn calls it in each worker process): the service named in the environment."""
    module, _, name = os.environ[_APP_FACTORY].partition(":")
    settings = Settings.from_env().require_servers()
    configure_logging(module.split(".")[1], settings.log_level)
    return behind_proxies(getattr(importlib.import_module(module), name)(settings), settings.trusted_proxies)


def serve(service: str, create_app: Callable[[Settings], Litestar], default_port: int) -> None:
    parser = argparse.ArgumentParser(description=f"BotRanks {service}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--workers", type=int, help="worker processes (default: BOTRANKS_API_WORKERS, else 1)")
    args = parser.parse_args()
    settings = Settings.from_env().require_servers()
    configure_logging(service, settings.log_level)
    workers = args.workers or settings.api_workers
    options = dict(host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on",
                   proxy_headers=False)  # proxy headers are applied by behind_proxies (plus X-Forwarded-Host)
    if workers <= 1:
        uvicorn.run(behind_proxies(create_app(settings), settings.trusted_proxies), **options)
        return
    os.environ[_APP_FACTORY] = f"{create_app.__module__}:{create_app.__name__}"
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"botranks-{service}-metrics-")
    uvicorn.run("libs.infra.serve:app_factory", factory=True, workers=workers, **options)
