"""`qiyue`: development and operations commands.

  qiyue token --role legal --org acme          print a development token
  qiyue serve contracts                        run one service (uvicorn)
  qiyue dev                                    broker + all four services (what `make run` does)
  qiyue migrate --service payments             apply migrations (production: a one-shot step)
  qiyue makemigration --service sla -m "..."   autogenerate a migration from the models
  qiyue replay --service contracts --since 2026-11-01T00:00:00Z   republish from the outbox
  qiyue dlq redrive --service payments         send the service's dead letters back, once each
  qiyue asyncapi                               regenerate docs/asyncapi.yaml
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys

from shared import registry
from shared.settings import settings_for

SERVICES = registry.names()


def load_spec(service: str):
    """A service's spec, looked up in the registry so `shared` never names a service."""
    return registry.get(service).spec()


def cmd_token(args) -> int:
    from shared.auth import issue_token

    settings = settings_for(SERVICES[0])
    if args.ttl > settings.jwt_max_lifetime_s:   # the services would refuse it
        print(f"--ttl may be at most {settings.jwt_max_lifetime_s} s (QIYUE_JWT_MAX_LIFETIME_S)", file=sys.stderr)
        return 2
    print(issue_token(settings.jwt_key(), args.sub, args.org, args.role, ttl_s=args.ttl, party=args.party))
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    settings = settings_for(args.service)
    uvicorn.run(f"{registry.get(args.service).app}:create", factory=True, host=args.host or settings.host,
                port=args.port or settings.http_port(), log_config=None, access_log=False)
    return 0


def cmd_migrate(args) -> int:
    from shared.migrations import upgrade

    for service in _services(args.service):
        spec = load_spec(service)
        upgrade(spec.migrations_dir, settings_for(service).db_url())
        print(f"{service}: migrated")
    return 0


def cmd_makemigration(args) -> int:
    from shared.migrations import make_revision

    spec = load_spec(args.service)
    make_revision(spec.migrations_dir, settings_for(args.service).db_url(), args.message)
    return 0


def cmd_replay(args) -> int:
    from sqlalchemy import select

    from shared.db import Database
    from shared.kafka import make_producer

    since = dt.datetime.fromisoformat(args.since.replace("Z", "+00:00"))
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.timezone.utc)
    spec = load_spec(args.service)
    settings = settings_for(args.service)
    db, outbox = Database.connect(settings.db_url()), spec.tables["outbox"]
    producer = make_producer(settings.kafka_bootstrap)
    count = 0
    with db.read_session() as s:
        for row in s.execute(select(outbox).where(outbox.c.created_at >= since).order_by(outbox.c.id)):
            producer.send(settings.topic_prefix + row.topic, key=row.key.encode(), value=row.payload.encode(),
                          headers=[(k, v.encode()) for k, v in row.headers.items()])
            count += 1
    producer.flush(timeout=30)
    producer.close()
    print(f"{args.service}: republished {count} events since {since.isoformat()}")
    return 0


def cmd_dlq_redrive(args) -> int:
    from shared.dead_letters import redrive

    spec, settings = load_spec(args.service), settings_for(args.service)
    if spec.subscription is None:
        print(f"{args.service} consumes nothing")
        return 0
    topics = [settings.topic_prefix + t for t in (args.topic or spec.subscription.topics)]
    count = redrive(settings.kafka_bootstrap, settings.topic_prefix + args.service, topics, limit=args.limit)
    print(f"{args.service}: sent back {count} dead letters")
    return 0


def cmd_asyncapi(args) -> int:
    from shared import asyncapi

    asyncapi.write()
    print(f"wrote {asyncapi.DOC_PATH}")
    return 0


def cmd_dev(args) -> int:
    from shared.devserver import main as dev_main

    return dev_main(keep_data=not args.fresh, port_offset=args.port_offset)


def cmd_plugin(args) -> int:
    """Service-specific commands live in services/<name>/cli.py and register themselves here."""
    return args.plugin(args)


def _services(name: str | None) -> tuple[str, ...]:
    return SERVICES if name in (None, "all") else (name,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qiyue", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("token", help="print a development token")
    p.add_argument("--role", action="append", required=True, help="repeatable: legal, pm, finance, approver, vendor, viewer, admin")
    p.add_argument("--org", required=True)
    p.add_argument("--sub", default="dev-user")
    p.add_argument("--ttl", type=int, default=12 * 3600)
    p.add_argument("--party", help="a vendor's company: the credit code of its contracts' vendor party")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("serve", help="run one service")
    p.add_argument("service", choices=SERVICES)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("dev", help="broker and all four services, as `make run`")
    p.add_argument("--fresh", action="store_true", help="start from empty databases")
    p.add_argument("--port-offset", type=int, default=0, help="shift every port (a second environment)")
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("migrate", help="apply migrations")
    p.add_argument("--service", default="all", choices=(*SERVICES, "all"))
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("makemigration", help="autogenerate a migration")
    p.add_argument("--service", required=True, choices=SERVICES)
    p.add_argument("-m", "--message", required=True)
    p.set_defaults(func=cmd_makemigration)

    p = sub.add_parser("replay", help="republish outbox events created since a time")
    p.add_argument("--service", required=True, choices=SERVICES)
    p.add_argument("--since", required=True, help="ISO 8601 instant, e.g. 2026-11-01T00:00:00Z")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("dlq", help="dead letters")
    dlq_commands = p.add_subparsers(dest="dlq_command", required=True)
    p = dlq_commands.add_parser("redrive", help="send a service's dead letters back to their topics, once each")
    p.add_argument("--service", required=True, choices=SERVICES)
    p.add_argument("--topic", action="append", help="only this consumed topic (repeatable)")
    p.add_argument("--limit", type=int, default=10_000)
    p.set_defaults(func=cmd_dlq_redrive)

    p = sub.add_parser("asyncapi", help="regenerate docs/asyncapi.yaml from the event models")
    p.set_defaults(func=cmd_asyncapi)

    for service in registry.services().values():
        if service.cli:
            importlib.import_module(service.cli).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
