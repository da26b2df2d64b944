"""Use cases of the notifications service, one module per business area. Each owns its unit of
work (`with uow: ... uow.commit()`); routes, the handler, the job and the CLI call them.

- `deliveries`: fan a consumed event out into deliveries (inbox items at once); redeliver.
- `sending`: the send pass: claim what is due, send outside any transaction, settle each attempt.
- `outgoing`: what one send carries (an e-mail, a daily digest, a signed webhook call).
- `subscriptions`, `endpoints` (incl. disabling a failing one), `inbox`.
"""
from services.notifications.service_layer.deliveries import fan_out, redeliver
from services.notifications.service_layer.endpoints import (create_endpoint, delete_endpoint, enable_endpoint,
                                                            rotate_endpoint_secret)
from services.notifications.service_layer.inbox import mark_all_read, mark_read
from services.notifications.service_layer.sending import send_due
from services.notifications.service_layer.subscriptions import (create_subscription, delete_subscription,
                                                                update_subscription)
from services.notifications.service_layer.unit_of_work import NotificationsUnitOfWork

__all__ = ["NotificationsUnitOfWork", "create_endpoint", "create_subscription", "delete_endpoint",
           "delete_subscription", "enable_endpoint", "fan_out", "mark_all_read", "mark_read", "redeliver",
           "rotate_endpoint_secret", "send_due", "update_subscription"]
