"""The notifications unit of work: shared.uow.UnitOfWork with the service's repositories."""
from __future__ import annotations

from services.notifications.adapters import repository
from shared.uow import UnitOfWork


class NotificationsUnitOfWork(UnitOfWork):
    def repositories(self) -> None:
        self.subscriptions = repository.SubscriptionRepository(self.session)
        self.endpoints = repository.EndpointRepository(self.session)
        self.deliveries = repository.DeliveryRepository(self.session)
        self.dead_letters = repository.DeadLetters(self.session)
        self.inbox = repository.InboxRepository(self.session)
        self.contracts = repository.KnownContractRepository(self.session)
