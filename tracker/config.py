"""The one place that reads the environment: a typed, documented configuration."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from tracker.domain.errors import TrackerError


@dataclass(frozen=True)
class Config:
    """Everything configurable, with safe defaults (documented in the README)."""

    data_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 5000
    master_key: str | None = None
    log_origin: str = field(default_factory=socket.gethostname)
    signing_key_path: Path | None = None
    write_rate: float = 20.0
    auth_failures_per_minute: int = 20
    max_body_bytes: int = 1024 * 1024
    webhook_deny_private: bool = False
    smtp_url: str = ""
    public_url: str = ""
    snapshot_interval: int = 50
    queue: str = "notifications"  # the RQ queue of deliveries (relay, workers, /metrics)

    @property
    def database(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'tracker.sqlite3'}"

    @property
    def is_postgres(self) -> bool:
        """True when the events live in PostgreSQL."""
        return self.database.startswith(("postgresql://", "postgres://"))

    def eventsourcing_env(self) -> dict[str, str]:
        """The event store's settings (passed explicitly; the process environment is not read)."""
        url = self.database
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": "tracker.persistence.recorders:TrackerSQLiteRecorder",
                "CREATE_TABLE": "n",
            }
        if self.is_postgres:
            u = urlparse(url)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": u.path.lstrip("/") or "postgres",
                "POSTGRES_HOST": u.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(u.port or 5432),
                "POSTGRES_USER": unquote(u.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(u.password or ""),
                "POSTGRES_LOCK_TIMEOUT": "10",
                "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
                "POSTGRES_POOL_SIZE": "5",
                "POSTGRES_MAX_OVERFLOW": "10",
                "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
                "APPLICATION_RECORDER_TOPIC":
                    "tracker.persistence.recorders:TrackerPostgresRecorder",
                "CREATE_TABLE": "n",
            }
        raise TrackerError(
            f"DATABASE_URL {url!r} is not supported: use sqlite:///path/to/file or "
            "postgresql://user@host:port/dbname."
        )


def from_env(environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from environment variables."""
    env = os.environ if environ is None else environ
    try:
        rate = float(env.get("TRACKER_WRITE_RATE", "20"))
        port = int(env.get("PORT", "5000"))
    except ValueError as e:
        raise TrackerError(f"A numeric setting is malformed ({e}); fix the variable.") from None
    data_dir = Path(env.get("TRACKER_DATA_DIR", "var"))
    signing = env.get("TRACKER_SIGNING_KEY")
    return Config(
        data_dir=data_dir,
        database_url=env.get("DATABASE_URL", ""),
        redis_url=env.get("REDIS_URL", ""),
        host=env.get("HOST", "127.0.0.1"),
        port=port,
        master_key=env.get("TRACKER_MASTER_KEY") or None,
        log_origin=env.get("TRACKER_LOG_ORIGIN") or socket.gethostname(),
        signing_key_path=Path(signing) if signing else None,
        write_rate=rate,
        webhook_deny_private=env.get("TRACKER_WEBHOOK_DENY_PRIVATE", "0") in ("1", "true", "yes"),
        smtp_url=env.get("SMTP_URL", ""),
        public_url=env.get("TRACKER_PUBLIC_URL", ""),
        queue=env.get("TRACKER_QUEUE") or "notifications",
    )
