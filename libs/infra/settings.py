"""Runtime configuration, read once from the environment (``BOTRANKS_*``): the one place that does.

An empty ``database_url`` / ``nats_url`` means "the embedded servers under ``home``" (what
``botranks up`` starts); the services themselves need both (``require_servers``).
``home`` defaults to the user's data directory, so every ``botranks`` command, from any
working directory, talks to the same embedded database as ``botranks up``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import platformdirs


def default_home() -> Path:
    return platformdirs.user_data_path("botranks")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = ""
    nats_url: str = ""
    home: Path = Path()
    #: where `botranks up` answers (the CLI's commands that talk HTTP, e.g. `botranks demo`)
    url: str = "http://127.0.0.1:8000"
    polygon_api_key: str = ""
    rate_limit_per_minute: int = 60
    log_level: str = "info"
    read_your_writes_timeout: float = 2.0
    session_ttl_s: int = 12 * 3600
    #: strategies one account may own at once (deleted ones do not count; 0: no limit)
    max_strategies_per_account: int = 100
    #: peers whose X-Forwarded-For/-Proto/-Host are believed (uvicorn's ``forwarded_allow_ips``)
    trusted_proxies: str = "127.0.0.1"
    #: origins besides the request's own that may send cookie-authenticated unsafe requests
    allowed_origins: tuple[str, ...] = ()
    #: failed sign-ins per lower-cased email per window before every attempt is 429 (0: no limit)
    login_failures_per_window: int = 10
    login_failure_window_s: int = 15 * 60
    #: login + register attempts per client address per minute (0: no limit)
    auth_attempts_per_minute_per_ip: int = 30
    #: `Host` names the front door of `botranks up` serves besides the loopback names and `url`'s host
    allowed_hosts: tuple[str, ...] = ()
    #: a bearer token that opens /readyz and /metrics at the base URL to non-loopback clients ("": loopback only)
    ops_token: str = ""
    #: a request's headers, and then its body, must arrive within this long at the front door
    request_read_timeout_s: float = 10.0
    #: uvicorn worker processes of command_api and query_api each (BOTRANKS_API_WORKERS; unset or 0: one per
    #: CPU this process may run on, so `botranks up` uses what the machine has)
    api_workers: int = 1
    #: where the projector and the relay answer /healthz, /readyz and /metrics (port 0: nowhere)
    health_host: str = "127.0.0.1"
    health_port: int = 0
    #: events a projector's partitions (or the relay) may be behind the log and still be ready
    ready_max_lag: int = 10_000
    #: copies of the JetStream stream (3 on a 3-node cluster)
    nats_stream_replicas: int = 1
    #: query_api downloads (events JSONL, NAV CSV) at once, per process and per client address (0: no cap)
    downloads_per_process: int = 4
    downloads_per_address: int = 2
    #: a download whose client accepts nothing for this long is cut (0: never)
    download_send_timeout_s: float = 60.0
    #: query_api pages and their data (not /static/) per client address: a minute's rate and a burst (0: no limit)
    page_requests_per_minute_per_ip: int = 600
    page_burst_per_ip: int = 300
    #: decoded events the projector keeps of the histories it re-derives (about 1 kB each; 0: none kept)
    projector_history_cache_events: int = 100_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            database_url=env.get("BOTRANKS_DATABASE_URL", ""),
            nats_url=env.get("BOTRANKS_NATS_URL", ""),
            home=Path(env.get("BOTRANKS_HOME") or default_home()).resolve(),
            url=env.get("BOTRANKS_URL", "http://127.0.0.1:8000").rstrip("/"),
            polygon_api_key=env.get("BOTRANKS_POLYGON_API_KEY", ""),
            rate_limit_per_minute=int(env.get("BOTRANKS_RATE_LIMIT_PER_MINUTE", "60")),
            log_level=env.get("BOTRANKS_LOG_LEVEL", "info"),
            read_your_writes_timeout=float(env.get("BOTRANKS_READ_YOUR_WRITES_TIMEOUT", "2.0")),
            session_ttl_s=int(env.get("BOTRANKS_SESSION_TTL_S", str(12 * 3600))),
            max_strategies_per_account=max(0, int(env.get("BOTRANKS_MAX_STRATEGIES_PER_ACCOUNT", "100"))),
            trusted_proxies=env.get("BOTRANKS_TRUSTED_PROXIES", "127.0.0.1").strip(),
            allowed_origins=tuple(o.strip() for o in env.get("BOTRANKS_ALLOWED_ORIGINS", "").split(",") if o.strip()),
            login_failures_per_window=int(env.get("BOTRANKS_LOGIN_FAILURES_PER_WINDOW", "10")),
            login_failure_window_s=int(env.get("BOTRANKS_LOGIN_FAILURE_WINDOW_S", str(15 * 60))),
            auth_attempts_per_minute_per_ip=int(env.get("BOTRANKS_AUTH_ATTEMPTS_PER_MINUTE_PER_IP", "30")),
            allowed_hosts=tuple(h.strip() for h in env.get("BOTRANKS_ALLOWED_HOSTS", "").split(",") if h.strip()),
            ops_token=env.get("BOTRANKS_OPS_TOKEN", "").strip(),
            request_read_timeout_s=max(0.1, float(env.get("BOTRANKS_REQUEST_READ_TIMEOUT_S", "10"))),
            api_workers=max(0, int(env.get("BOTRANKS_API_WORKERS", "0") or "0")) or available_cpus(),
            health_host=env.get("BOTRANKS_HEALTH_HOST", "127.0.0.1"),
            health_port=int(env.get("BOTRANKS_HEALTH_PORT", "0")),
            ready_max_lag=int(env.get("BOTRANKS_READY_MAX_LAG", "10000")),
            nats_stream_replicas=max(1, int(env.get("BOTRANKS_NATS_STREAM_REPLICAS", "1"))),
            downloads_per_process=max(0, int(env.get("BOTRANKS_DOWNLOADS_PER_PROCESS", "4"))),
            downloads_per_address=max(0, int(env.get("BOTRANKS_DOWNLOADS_PER_ADDRESS", "2"))),
            download_send_timeout_s=max(0.0, float(env.get("BOTRANKS_DOWNLOAD_SEND_TIMEOUT_S", "60"))),
            page_requests_per_minute_per_ip=max(0, int(env.get("BOTRANKS_PAGE_REQUESTS_PER_MINUTE_PER_IP", "600"))),
            page_burst_per_ip=max(1, int(env.get("BOTRANKS_PAGE_BURST_PER_IP", "300"))),
            projector_history_cache_events=max(0, int(env.get("BOTRANKS_PROJECTOR_HISTORY_CACHE_EVENTS", "100000"))),
        )

    def require_servers(self) -> Settings:
        """For a service process: both URLs must be set (``botranks up`` sets them)."""
        if not self.database_url or not self.nats_url:
            raise RuntimeError(
                "BOTRANKS_DATABASE_URL and BOTRANKS_NATS_URL must be set "
                "(`botranks up` sets them for the services it starts)"
            )
        return self

    def with_servers(self, database_url: str, nats_url: str) -> Settings:
        return replace(self, database_url=database_url, nats_url=nats_url)

    def service_environment(self) -> dict[str, str]:
        """The environment of a service process that ``botranks up`` starts: this one, plus the servers."""
        return {
            **os.environ,
            "BOTRANKS_DATABASE_URL": self.database_url,
            "BOTRANKS_NATS_URL": self.nats_url,
            "BOTRANKS_HOME": str(self.home),
        }


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's or a taskset's share), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
