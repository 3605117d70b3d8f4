"""examflow's settings: one pydantic-settings object, read when asked, never at import."""

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

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: SmtpSecurity = SmtpSecurity.none
    smtp_connections: int = 8
    smtp_timeout: float = 30.0
    mail_from: str = "examflow <examflow@localhost>"
    ops_email: str = "ops@localhost"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'examflow.db').resolve()}"

    @property
    def mail_dir(self) -> Path:
        return self.home / "mail"


def get_settings() -> Settings:
    """Read settings from the environment now (call at run time, not import time)."""
    return Settings()
