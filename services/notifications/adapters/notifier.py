"""The service's working parts, built from its settings (one per running instance): templates,
the SMTP and webhook senders, the retry and disabling policies, jitter and the scheduler's wake-up.

It holds no clock: "now" is the app's (`runtime.now()`, `now_of(request)`, the scheduler's `now`).
"""
from __future__ import annotations

import random
from functools import cached_property
from typing import Callable

from sqlalchemy import event as sa_event

from services.notifications.adapters.smtp import SmtpSender
from services.notifications.adapters.templates import Templates
from services.notifications.adapters.webhooks import WebhookSender
from services.notifications.domain.endpoints import DisablePolicy
from services.notifications.domain.schedule import RetryPolicy
from services.notifications.settings import NotificationSettings


class Notifier:
    def __init__(self, settings: NotificationSettings | None = None):
        self._settings = settings
        self.random: Callable[[], float] = random.random
        self.wake: Callable[[], None] = lambda: None     # the scheduler's, once running
        self.lease_ttl_s: float | None = None             # the scheduler lease's, which a send pass keeps inside

    @cached_property
    def settings(self) -> NotificationSettings:
        return self._settings or NotificationSettings.of()

    @cached_property
    def templates(self) -> Templates:
        return Templates(fallback_language=self.settings.default_language)

    @cached_property
    def mail(self) -> SmtpSender:
        return SmtpSender(self.settings)

    @cached_property
    def webhooks(self) -> WebhookSender:
        return WebhookSender(self.settings)

    @property
    def retry(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(s.seconds("retry_base_s"), s.seconds("retry_cap_s"), s.seconds("retry_horizon_s"))

    @property
    def disabling(self) -> DisablePolicy:
        s = self.settings
        return DisablePolicy(s.seconds("disable_endpoint_after_s"), s.disable_endpoint_after_failed_deliveries)

    def wake_after_commit(self, uow) -> None:
        """Wake the sender once the unit's transaction (the outermost one) has committed."""
        sa_event.listen(uow.session, "after_commit", lambda _s: self.wake(), once=True)
