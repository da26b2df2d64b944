"""Prometheus metrics of one service process (its own registry, so several apps can share a process)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class ServiceMetrics:
    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("qiyue_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram("qiyue_http_request_seconds", "HTTP request latency", ["method", "route"], registry=r,
                                 buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        self.produced = Counter("qiyue_events_produced_total", "Events published from the outbox", ["topic", "type"], registry=r)
        self.consumed = Counter("qiyue_events_consumed_total", "Events consumed", ["topic", "type", "outcome"], registry=r)
        self.dead_lettered = Counter("qiyue_events_dead_lettered_total", "Events sent to a dead-letter topic", ["topic"], registry=r)
        self.republished = Counter("qiyue_outbox_republished_total",
                                   "Outbox rows published again because the broker lost them", registry=r)
        self.outbox_parked = Gauge("qiyue_outbox_parked",
                                   "Outbox rows the broker refused for good, set aside until retried", registry=r)
        self.outbox_backlog = Gauge("qiyue_outbox_backlog", "Outbox rows not yet published", registry=r)
        self.consumer_lag = Gauge("qiyue_consumer_lag", "Messages behind the end of each partition", ["topic", "partition"], registry=r)
        self.timers_fired = Counter("qiyue_scheduled_jobs_total", "Scheduled job runs that did work", ["job"], registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
