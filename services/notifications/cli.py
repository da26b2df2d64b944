"""`qiyue notifications ...`: operations on the notifications service's own database.

  qiyue notifications redeliver <delivery id> --org acme   send a failed delivery again

The running service's scheduler picks the delivery up on its next tick, exactly as after
`POST /v1/deliveries/{id}/redeliver`.
"""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("notifications", help="notifications service operations")
    commands = parser.add_subparsers(dest="notifications_command", required=True)
    p = commands.add_parser("redeliver", help="send a failed (or delivered) e-mail or webhook delivery again")
    p.add_argument("delivery_id")
    p.add_argument("--org", required=True, help="the organisation the delivery belongs to")
    p.set_defaults(func=cmd_redeliver)


def cmd_redeliver(args: argparse.Namespace) -> int:
    from services.notifications import service_layer
    from services.notifications.adapters.tables import metadata
    from services.notifications.settings import NotificationSettings
    from shared.db import Database
    from shared.errors import DomainError
    from shared.local_time import utcnow

    settings = NotificationSettings.of()
    db = Database.connect(settings.db_url())
    try:
        uow = service_layer.NotificationsUnitOfWork(db.write_session(), metadata.tables["outbox"],
                                                    "/qiyue/notifications")
        row = service_layer.redeliver(uow, args.org, args.delivery_id, utcnow())
    except DomainError as exc:
        print(f"not redelivered: {exc.detail}")
        return 1
    finally:
        db.dispose()
    print(f"delivery {row.id} ({row.channel} to {row.recipient}) will be sent again")
    return 0
