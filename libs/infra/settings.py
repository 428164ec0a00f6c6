"""Runtime configuration, read once from the environment (``BOTRANKS_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    nats_url: str
    home: Path
    rate_limit_per_minute: int = 60
    log_level: str = "info"
    read_your_writes_timeout: float = 2.0
    session_ttl_s: int = 12 * 3600
    #: peers whose X-Forwarded-For/-Proto/-Host are believed (uvicorn's ``forwarded_allow_ips``)
    trusted_proxies: str = "127.0.0.1"
    #: origins besides the request's own that may send cookie-authenticated unsafe requests
    allowed_origins: tuple[str, ...] = ()
    #: failed sign-ins per lower-cased email per window before every attempt is 429 (0: no limit)
    login_failures_per_window: int = 10
    login_failure_window_s: int = 15 * 60
    #: login + register attempts per client address per minute (0: no limit)
    auth_attempts_per_minute_per_ip: int = 30

    @classmethod
    def from_env(cls) -> "Settings":
        database_url = os.environ.get("BOTRANKS_DATABASE_URL", "")
        nats_url = os.environ.get("BOTRANKS_NATS_URL", "")
        if not database_url or not nats_url:
            raise RuntimeError(
                "BOTRANKS_DATABASE_URL and BOTRANKS_NATS_URL must be set "
                "(`botranks up` sets them for the services it starts)"
            )
        return cls(
            database_url=database_url,
            nats_url=nats_url,
            home=Path(os.environ.get("BOTRANKS_HOME", ".botranks")).resolve(),
            rate_limit_per_minute=int(os.environ.get("BOTRANKS_RATE_LIMIT_PER_MINUTE", "60")),
            log_level=os.environ.get("BOTRANKS_LOG_LEVEL", "info"),
            read_your_writes_timeout=float(os.environ.get("BOTRANKS_READ_YOUR_WRITES_TIMEOUT", "2.0")),
            session_ttl_s=int(os.environ.get("BOTRANKS_SESSION_TTL_S", str(12 * 3600))),
            trusted_proxies=os.environ.get("BOTRANKS_TRUSTED_PROXIES", "127.0.0.1").strip(),
            allowed_origins=tuple(o.strip() for o in os.environ.get("BOTRANKS_ALLOWED_ORIGINS", "").split(",")
                                  if o.strip()),
            login_failures_per_window=int(os.environ.get("BOTRANKS_LOGIN_FAILURES_PER_WINDOW", "10")),
            login_failure_window_s=int(os.environ.get("BOTRANKS_LOGIN_FAILURE_WINDOW_S", str(15 * 60))),
            auth_attempts_per_minute_per_ip=int(os.environ.get("BOTRANKS_AUTH_ATTEMPTS_PER_MINUTE_PER_IP", "30")),
        )
