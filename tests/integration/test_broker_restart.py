"""The memory-only broker dies under writes and comes back empty on the same port; nobody lifts a finger.

- The producing service keeps writing through the outage (the outbox holds its events).
- The relay notices that the broker lost the topics it had published to and publishes their rows
  again, in order, together with the backlog.
- A consumer that ran all along resumes by itself: it rejoins its group on the new broker.
- A consumer service that was down during the crash, started afterwards, still gets every event,
  including those the old broker had taken and then lost.
Every effect is counted: each note exactly once in each consumer, nothing left unpublished.
"""
from __future__ import annotations

from dataclasses import replace

from shared.broker import EmbeddedBroker, free_port
from shared.service import Runtime
from tests.helpers import wait_until
from tests.integration.test_event_backbone import (_sample, consumer_spec, effects, producer_spec, runtime,
                                                  unpublished, write_note)


def test_a_broker_restart_under_writes_heals_itself_with_every_effect_once(make_settings, tmp_path):
    port = free_port()
    broker = EmbeddedBroker(port, tmp_path / "broker.log").start()
    prod = runtime(producer_spec(), make_settings, kafka_bootstrap=broker.bootstrap)
    running = runtime(consumer_spec(), make_settings, kafka_bootstrap=broker.bootstrap)
    late_settings = make_settings("late-consumer", migrate_on_start=False, kafka_bootstrap=broker.bootstrap)
    late = None
    try:
        before = [write_note(prod, f"before-{i}") for i in range(10)]
        wait_until(lambda: len(effects(running)) == 10, 40, message="the first ten consumed")
        assert unpublished(prod) == 0                         # the old broker had every one of them

        broker.process.kill()                                 # kill -9: nothing is flushed anywhere
        broker.process.wait()
        during = [write_note(prod, f"during-{i}") for i in range(5)]
        broker = EmbeddedBroker(port, tmp_path / "broker.log").start()
        after = [write_note(prod, f"after-{i}") for i in range(5)]

        everything = sorted([*before, *during, *after])
        wait_until(lambda: unpublished(prod) == 0, 60, message="the relay published the backlog")
        wait_until(lambda: len(effects(running)) >= 20, 60, message="the running consumer resumed")
        late = Runtime(replace(consumer_spec(), name="late-consumer"), late_settings)   # down through it all
        late.start()
        wait_until(lambda: len(effects(late)) >= 20, 60, message="the late consumer got everything")
        wait_until(lambda: unpublished(prod) == 0, 30, message="nothing left behind")
        assert sorted(n for _, n in effects(running)) == everything        # exactly once each
        assert sorted(n for _, n in effects(late)) == everything           # the lost ten came back
        assert _sample(prod, "qiyue_outbox_republished_total") >= 10
    finally:
        for rt in (late, running, prod):
            if rt is not None:
                rt.stop()
        broker.stop()
