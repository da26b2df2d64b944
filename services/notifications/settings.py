"""Settings of the notifications service: the shared ones plus SMTP, webhooks and retries.

Read like every other setting (pydantic-settings): `QIYUE_SMTP_HOST`, `QIYUE_SMTP_PASSWORD`, ...
and `QIYUE_NOTIFICATIONS_<NAME>` for the service-specific ones (`..._ALLOW_PRIVATE_WEBHOOKS`,
`..._RETRY_BASE_S`). The SMTP password is a SecretStr: it never appears in a repr or a log.
"""
from __future__ import annotations

import datetime as dt
import os

from pydantic import SecretStr

from shared.settings import Settings

SERVICE = "notifications"


class NotificationSettings(Settings):
    service: str = SERVICE
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "Qiyue 契约 <notifications@qiyue.localhost>"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = 10.0

    allow_private_webhooks: bool = False      # development and tests only: see domain/endpoints.py
    webhook_timeout_s: float = 10.0           # one attempt in all: connect, headers and body
    retry_base_s: float = 5.0
    retry_cap_s: float = 2 * 3600.0
    retry_horizon_s: float = 24 * 3600.0
    disable_endpoint_after_s: float = 24 * 3600.0
    disable_endpoint_after_failed_deliveries: int = 5
    claim_timeout_s: float = 120.0            # a claimed delivery not settled by then is tried again
    batch_size: int = 100
    send_concurrency: int = 8

    default_language: str = "zh-CN"
    default_timezone: str = "Asia/Shanghai"

    @classmethod
    def of(cls, settings: Settings | None = None) -> "NotificationSettings":
        """These settings from the environment, with what `settings` states explicitly on top."""
        if isinstance(settings, cls):
            return settings
        prefix = f"QIYUE_{SERVICE.upper()}_"
        specific = {k[len(prefix):].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}
        given = settings.model_dump(exclude_unset=True) if settings is not None else {}
        return cls(**{**specific, **given})

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def seconds(self, name: str) -> dt.timedelta:
        return dt.timedelta(seconds=getattr(self, name))
