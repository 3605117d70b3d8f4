"""examflow's settings: one pydantic-settings object, read when asked, never at import."""

from contextlib import suppress
from enum import StrEnum
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SmtpSecurity(StrEnum):
    none = "none"
    starttls = "starttls"
    tls = "tls"


class Settings(BaseSettings):
    """Everything examflow reads from the environment (prefix ``EXAMFLOW_``)."""

    model_config = SettingsConfigDict(env_prefix="EXAMFLOW_", extra="ignore")

    home: Path = Path("var")
    database_url: str | None = None
    # the rendered materials (PDFs by content hash); in production a directory every portal
    # worker and every Dask worker shares (default <home>/materials/store)
    materials_dir: Path | None = None
    # an existing Dask scheduler (tcp://host:8786) that renders materials; none: a local cluster
    dask_address: str | None = None

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_block: str | None = None  # a Prefect Secret block's name, instead
    smtp_security: SmtpSecurity = SmtpSecurity.none
    smtp_connections: int = 8
    smtp_timeout: float = 30.0
    # how long a delivery's claim on an outbox row lasts unless renewed (a dead process's
    # claims are taken over after this)
    outbox_lease_seconds: float = 120.0
    mail_from: str = "examflow <examflow@localhost>"
    ops_email: str = "ops@localhost"
    public_url: str = "http://127.0.0.1:8090"
    # the organiser's private key file, where checkpoints run: the certificates checkpoint then
    # re-signs the revocation list itself after revoking superseded certificates
    organiser_key_file: Path | None = None
    link_secret: SecretStr | None = None
    portal_host: str = "127.0.0.1"
    portal_port: int = 8090
    portal_as_of: str | None = None  # a fixed clock for a rehearsal (ISO; Asia/Shanghai)
    # a Stalled stage is re-run by an event at most once per this many seconds
    rerun_debounce_seconds: int = 300
    # a flow run whose heartbeats stopped this long ago is marked Crashed (and run again); the
    # workers set PREFECT_FLOWS_HEARTBEAT_FREQUENCY (30 s at least) well below it
    zombie_after_seconds: int = 90

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'examflow.db').resolve()}"

    @property
    def mail_dir(self) -> Path:
        return self.home / "mail"

    @property
    def materials_store(self) -> Path:
        return self.materials_dir or self.home / "materials" / "store"


def link_secret() -> bytes:
    """The secret that signs sites' download links: EXAMFLOW_LINK_SECRET, else a random one
    kept in <home>/link-secret (0600), made on first use."""
    settings = get_settings()
    if settings.link_secret is not None:
        return settings.link_secret.get_secret_value().encode()
    path = settings.home / "link-secret"
    if not path.exists():
        import os
        import secrets as random_secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(random_secrets.token_hex(32))
    return path.read_text().strip().encode()


def get_settings() -> Settings:
    """Read settings from the environment now (call at run time, not import time)."""
    return Settings()
