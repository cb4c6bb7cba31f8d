"""Prometheus instruments, declared here only, in a registry of codexd's own.

Label sets are small and fixed (endpoint route, status, model, kind), so label lookups are cached by
prometheus-client; handlers touch metrics once per request, never per stream event.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from codexd.translate.aggregate import Usage
from codexd.upstream.ratelimits import Window

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("codexd_requests", "HTTP requests served", ["endpoint", "status"], registry=REGISTRY)
DURATION = Histogram(
    "codexd_request_duration_seconds",
    "Request duration, to the end of the stream",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
    registry=REGISTRY,
)
TTFB = Histogram(
    "codexd_time_to_first_byte_seconds",
    "Time from request start to the first byte sent to the client",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
OVERHEAD = Histogram(
    "codexd_overhead_seconds",
    "Time codexd itself spent before the first byte, the upstream's own time left out (x-codexd-overhead-ms)",
    ["endpoint"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
    registry=REGISTRY,
)
IN_FLIGHT = Gauge("codexd_in_flight_requests", "Requests being served now", registry=REGISTRY)
UPSTREAM_ERRORS = Counter("codexd_upstream_errors", "Upstream failures by kind", ["kind"], registry=REGISTRY)
REFRESHES = Counter("codexd_token_refreshes", "Access-token refreshes by result", ["result"], registry=REGISTRY)
TOKENS = Counter("codexd_tokens", "Tokens reported by the upstream", ["model", "kind"], registry=REGISTRY)
RATE_USED = Gauge(
    "codexd_rate_limit_used_percent", "Upstream rate-limit window use", ["family", "window"], registry=REGISTRY
)
RATE_RESET = Gauge(
    "codexd_rate_limit_reset_timestamp_seconds",
    "When the upstream rate-limit window resets (unix time)",
    ["family", "window"],
    registry=REGISTRY,
)
RATE_MINUTES = Gauge(
    "codexd_rate_limit_window_minutes",
    "Length of the upstream rate-limit window",
    ["family", "window"],
    registry=REGISTRY,
)


def observe_usage(model: str, usage: Usage) -> None:
    """Count one answer's tokens."""
    TOKENS.labels(model, "input").inc(usage.input_tokens - usage.cached_tokens)
    TOKENS.labels(model, "cached_input").inc(usage.cached_tokens)
    TOKENS.labels(model, "output").inc(usage.output_tokens)
    TOKENS.labels(model, "reasoning").inc(usage.reasoning_tokens)


def observe_windows(windows: list[Window]) -> None:
    """Set the rate-limit gauges from the latest upstream headers."""
    for w in windows:
        RATE_USED.labels(w.family, w.window).set(w.used_percent)
        RATE_MINUTES.labels(w.family, w.window).set(w.window_minutes)
        if w.resets_at is not None:
            RATE_RESET.labels(w.family, w.window).set(w.resets_at)


def exposition() -> bytes:
    """The Prometheus text format of every codexd metric."""
    return generate_latest(REGISTRY)
