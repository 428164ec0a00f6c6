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
        )
