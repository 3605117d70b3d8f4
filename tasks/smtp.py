"""The SMTP configuration a delivery uses, with its password from env or a Prefect Secret block."""

from dataclasses import replace
from typing import cast

from examflow.settings import get_settings
from notifications.sender import SmtpConfig


def smtp_config() -> SmtpConfig:
    """Settings read now; `EXAMFLOW_SMTP_PASSWORD_BLOCK` names a Prefect Secret block holding
    the password (loaded at run time, so it is never a parameter, log line or artifact)."""
    settings = get_settings()
    config = SmtpConfig.from_settings(settings)
    if settings.smtp_password_block:
        from prefect.blocks.system import Secret

        secret = cast(Secret[str], Secret.load(settings.smtp_password_block))  # sync call
        config = replace(config, password=str(secret.get()))
    return config
