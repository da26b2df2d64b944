"""Use cases of the sla service: what happens when terms, tickets, samples or time arrive.

The HTTP routes, the event handlers and the scheduled jobs each call one use case here. A use
case owns its unit of work (`with uow: ... uow.commit()`; inside a unit already open, such as the
consumer's, that is a savepoint): it loads state through the repositories on the unit
(`uow.definitions`, `uow.tickets`, `uow.samples`, `uow.windows`, `uow.timers`, `uow.periods`,
`uow.facts`), asks the domain what it means, saves the result, and its events go to the outbox
at commit (collected from the definition, or emitted for the windows, timers and months, which
are stored rows rather than domain aggregates).

Two kinds of metric speak differently:
- timer-driven ones (ticket first response and resolution, report delivery) speak through
  rows in `sla_timers`: an instant at which `sla.at_risk` or `sla.breached` is due, fired once
  by the timers job even if no input ever arrives;
- window metrics (service level, abandonment, availability, FCR, CSAT) speak when their
  window's standing changes (ok → at risk → breached, and back: `sla.recovered`); an outage
  still going on also arms timers for the moments it will use up the month's allowed downtime.

A month that has closed is closed again (`closing`) when late input changes its compliance.
"""
from __future__ import annotations

from services.sla.service_layer.feed_keys import (check_feed_signatures, create_feed_key, list_feed_keys,
                                                  revoke_feed_key)
from services.sla.service_layer.definitions import apply_contract_terms, apply_definition, define_sla
from services.sla.service_layer.ingest import (ingest_samples, ingest_ticket_events, record_feed_samples,
                                               record_feed_ticket_events)
from services.sla.service_layer.samples import record_samples
from services.sla.service_layer.scheduled import close_due_periods, fire_due_timers
from services.sla.service_layer.tickets import record_ticket_events
from services.sla.service_layer.unit_of_work import SlaUnitOfWork

__all__ = ["SlaUnitOfWork", "apply_contract_terms", "apply_definition", "define_sla", "record_ticket_events",
           "record_samples", "ingest_ticket_events", "ingest_samples",
           "record_feed_ticket_events", "record_feed_samples", "fire_due_timers", "close_due_periods",
           "create_feed_key", "list_feed_keys", "revoke_feed_key", "check_feed_signatures"]
