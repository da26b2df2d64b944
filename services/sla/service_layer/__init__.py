"""Use cases of the sla service: what happens when terms, tickets, samples or time arrive.

The HTTP routes, the event handlers and the scheduled jobs all come here; this layer loads
state through the repository, asks the domain what it means, saves the result and publishes
events, all inside the caller's unit of work (it never commits: the caller does).

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

from services.sla.service_layer.definitions import apply_contract_terms, apply_definition
from services.sla.service_layer.samples import record_samples
from services.sla.service_layer.scheduled import close_due_periods, fire_due_timers
from services.sla.service_layer.tickets import record_ticket_events
from services.sla.service_layer.windows import measure_window

__all__ = ["apply_contract_terms", "apply_definition", "record_ticket_events", "record_samples", "measure_window",
           "fire_due_timers", "close_due_periods"]
