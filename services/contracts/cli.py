"""`qiyue audit ...`: checks on the contracts service's own database.

  qiyue audit verify      re-hash every audit chain; exit 1 naming each edited or missing entry

It reads the database the contracts service is configured with (QIYUE_CONTRACTS_DATABASE_URL,
QIYUE_DATABASE_URL, or the embedded default), never through the API: it is meant to catch
changes made behind the service's back.
"""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("audit", help="contracts audit log operations")
    commands = parser.add_subparsers(dest="audit_command", required=True)
    p = commands.add_parser("verify", help="verify every hash chain of the contracts audit log")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import DBAPIError

    from services.contracts.adapters import audit_log
    from services.contracts.domain.audit import verify
    from shared.db import Database
    from shared.settings import settings_for

    db = Database.connect(settings_for("contracts").db_url())
    try:
        with db.read_session() as session:
            entries, heads = audit_log.all_entries(session)
    except DBAPIError as exc:
        print(f"cannot read the audit log (is the database migrated?): {exc.orig}")
        return 2
    finally:
        db.dispose()
    breaks = verify(entries, heads)
    for problem in breaks:
        print(f"BROKEN {problem}")
    print(f"{len(entries)} entries in {len(heads)} chains: " + ("intact" if not breaks else f"{len(breaks)} breaks"))
    return 1 if breaks else 0
