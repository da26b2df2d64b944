"""Use cases of the payments service: what happens when a contract, a credit, a request or a day arrives.

HTTP routes, event handlers and scheduled jobs all come here with a `PaymentsUnitOfWork`. Each use
case opens it (`with uow:`), loads the schedule through `uow.schedules`, lets the domain decide,
saves, collects the schedule's recorded events and commits (inside a unit already open, such as the
consumer's, that is a savepoint). Creating requests go through `shared.idempotency.once`.

- `schedules`: from the contracts service (signed, amended, terminated)
- `credits`: service credits from the SLA service and their corrections
- `milestones`: reach, submit, accept, reject
- `invoicing`: invoices and payments
- `calendar_feeds`: calendar subscription URLs
- `days`: the scheduler's day (released, overdue, late fees)
"""
from services.payments.service_layer.calendar_feeds import create_feed, revoke_feed
from services.payments.service_layer.credits import receive_credit, withdraw_credit
from services.payments.service_layer.days import advance_schedule, advance_schedules
from services.payments.service_layer.invoicing import issue_invoice, record_payment
from services.payments.service_layer.milestones import (accept_milestone, reach_milestone, reject_milestone,
                                                        submit_milestone)
from services.payments.service_layer.schedules import amend_schedule, create_schedule, terminate_schedule
from services.payments.service_layer.unit_of_work import PaymentsUnitOfWork

__all__ = ["PaymentsUnitOfWork", "create_schedule", "amend_schedule", "terminate_schedule", "receive_credit",
           "withdraw_credit", "reach_milestone", "submit_milestone", "accept_milestone", "reject_milestone",
           "issue_invoice", "record_payment", "create_feed", "revoke_feed", "advance_schedules", "advance_schedule"]
