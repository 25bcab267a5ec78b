"""The service's Prometheus metrics, in a registry of its own (one per service instance)."""

from __future__ import annotations

import datetime as dt

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Request latency buckets, in seconds: single requests take milliseconds, batches seconds.
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _day_seconds(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()


class Metrics:
    """Requests, latency, the model's and the state's day, reloads and errors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("fraudpipe_serve_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=r)
        self.latency = Histogram("fraudpipe_serve_request_seconds", "Request latency by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.transactions = Counter("fraudpipe_serve_transactions",
                                    "Transactions by outcome (scored, duplicate, rejected)",
                                    ["outcome"], registry=r)
        self.model_day = Gauge("fraudpipe_serve_model_day_timestamp_seconds",
                               "Midnight UTC of the day the serving checkpoint was trained "
                               "through", registry=r)
        self.state_day = Gauge("fraudpipe_serve_state_day_timestamp_seconds",
                               "Midnight UTC of the serving day whose history is loaded",
                               registry=r)
        self.reloads = Counter("fraudpipe_serve_reloads",
                               "Reloads by outcome (loaded: a new head; refused: a head that "
                               "failed verification; history: the share's days changed)",
                               ["outcome"], registry=r)
        self.errors = Counter("fraudpipe_serve_errors",
                              "Errors by kind (reload, scoring, roll)", ["kind"], registry=r)
        self.rolls = Counter("fraudpipe_serve_day_rolls", "Serving day changes", registry=r)

    def set_model_day(self, day: dt.date) -> None:
        """Record the serving checkpoint's day."""
        self.model_day.set(_day_seconds(day))

    def set_state_day(self, day: dt.date) -> None:
        """Record the serving day."""
        self.state_day.set(_day_seconds(day))

    def text(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
