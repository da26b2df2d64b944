"""A consumer in a process of its own, for the kill -9 fault test (test_backbone_faults.py).

    python -m tests.integration.backbone_consumer --database-url URL --bootstrap HOST:PORT --prefix P
        [--hold-after N --marker FILE]

It consumes notes exactly as a service does (ServiceSpec + Runtime). With `--hold-after N` it
stops dead after its N-th effect: the batch holding it is committed in the database, its offsets
are not, and it writes FILE so the test knows the process sits in that window, ready to be killed.
"""
from __future__ import annotations

import argparse
import threading
from pathlib import Path

from shared.service import Runtime
from shared.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--database-url", "--bootstrap", "--prefix"):
        parser.add_argument(name, required=True)
    parser.add_argument("--hold-after", type=int, default=0)
    parser.add_argument("--marker")
    args = parser.parse_args()

    from tests.integration.test_backbone_faults import note_consumer_spec

    settings = Settings(service="consumer", environment="test", database_url=args.database_url,
                        kafka_bootstrap=args.bootstrap, kafka_partitions=3, topic_prefix=args.prefix,
                        jwt_secret="unused-in-this-process-" * 2, migrate_on_start=False, relay_poll_interval_s=0.2, log_level="WARNING")
    rt = Runtime(note_consumer_spec(set()), settings)
    if args.hold_after:
        effects = []

        def hold(envelope) -> None:
            effects.append(envelope.id)
            if len(effects) == args.hold_after:
                Path(args.marker).write_text(str(len(effects)))
                threading.Event().wait()     # between the effects' commit and the offset commit, for good
        rt.consumer.after_effect = hold
    rt.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
