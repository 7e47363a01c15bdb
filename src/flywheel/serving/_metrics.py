"""The service's counters and their Prometheus text (``GET /metrics``).

Each app has its own :class:`_Metrics`, so two apps in one process count apart. Handlers are
counted by the status of the response they return, and ``/predict`` is timed into a histogram
whose latency includes the durable write of its log records.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flywheel.prediction_log import PredictionLog
from flywheel.serving._served import Served

__all__ = [
    "LATENCY_BUCKETS",
]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class _Metrics:
    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0
    latency_count: int = 0
    predictions: int = 0
    reloads: int = 0
    reload_errors: int = 0
    shadow_predictions: int = 0  # a second model's answers handed to the log (never returned)
    shadow_errors: int = 0  # shadow runs that failed: each request concerned was answered all the same
    shadow_skipped: int = 0  # requests not shadowed: the shadow was too far behind
    piloted: int = 0  # requests answered by the --pilot model
    outcomes: int = 0  # outcomes made durable
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observed(self, endpoint: str) -> Callable[[Any], Any]:
        """Count a handler's answers by status (read from the response it returns) and time them."""

        def wrap(handler: Any) -> Any:
            @functools.wraps(handler)
            async def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                response = await handler(*args, **kwargs)
                self.observe(endpoint, getattr(response, "status_code", 200), time.perf_counter() - started)
                return response

            return timed

        return wrap

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        with self.lock:
            key = (endpoint, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            if endpoint == "/predict":
                i = next((j for j, b in enumerate(LATENCY_BUCKETS) if seconds <= b), len(LATENCY_BUCKETS))
                self.buckets[i] += 1
                self.latency_sum += seconds
                self.latency_count += 1


def _prometheus(log: PredictionLog | None, current: Served, metrics: _Metrics) -> str:
    lines = [
        "# HELP flywheel_requests_total Requests by endpoint and status.",
        "# TYPE flywheel_requests_total counter",
    ]
    with metrics.lock:
        for (endpoint, status), n in sorted(metrics.requests.items()):
            lines.append(f'flywheel_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
        lines += [
            "# HELP flywheel_predict_latency_seconds Time to answer /predict, durable logging included.",
            "# TYPE flywheel_predict_latency_seconds histogram",
        ]
        cumulative = 0
        for bound, n in zip(LATENCY_BUCKETS, metrics.buckets, strict=False):
            cumulative += n
            lines.append(f'flywheel_predict_latency_seconds_bucket{{le="{bound}"}} {cumulative}')
        lines.append(f'flywheel_predict_latency_seconds_bucket{{le="+Inf"}} {metrics.latency_count}')
        lines.append(f"flywheel_predict_latency_seconds_sum {metrics.latency_sum}")
        lines.append(f"flywheel_predict_latency_seconds_count {metrics.latency_count}")
    lines += [
        "# HELP flywheel_log_queue_depth Records waiting for the log writer.",
        "# TYPE flywheel_log_queue_depth gauge",
        f"flywheel_log_queue_depth {log.depth if log else 0}",
        "# HELP flywheel_predictions_logged_total Predictions written to the log.",
        "# TYPE flywheel_predictions_logged_total counter",
        f"flywheel_predictions_logged_total {log.logged if log else 0}",
        "# HELP flywheel_predictions_dropped_total Records lost by the log (must stay 0).",
        "# TYPE flywheel_predictions_dropped_total counter",
        f"flywheel_predictions_dropped_total {log.dropped if log else 0}",
        "# HELP flywheel_feedback_logged_total Feedback labels written to the log.",
        "# TYPE flywheel_feedback_logged_total counter",
        f"flywheel_feedback_logged_total {log.feedback if log else 0}",
        "# HELP flywheel_outcomes_logged_total Outcomes written to the log.",
        "# TYPE flywheel_outcomes_logged_total counter",
        f"flywheel_outcomes_logged_total {metrics.outcomes}",
        "# HELP flywheel_shadow_predictions_total Answers of the shadow model logged, never returned.",
        "# TYPE flywheel_shadow_predictions_total counter",
        f"flywheel_shadow_predictions_total {metrics.shadow_predictions}",
        "# HELP flywheel_shadow_errors_total Shadow runs that failed (their requests were answered).",
        "# TYPE flywheel_shadow_errors_total counter",
        f"flywheel_shadow_errors_total {metrics.shadow_errors}",
        "# HELP flywheel_shadow_skipped_total Requests not shadowed: the shadow was too far behind.",
        "# TYPE flywheel_shadow_skipped_total counter",
        f"flywheel_shadow_skipped_total {metrics.shadow_skipped}",
        "# HELP flywheel_pilot_requests_total Requests answered by the --pilot model.",
        "# TYPE flywheel_pilot_requests_total counter",
        f"flywheel_pilot_requests_total {metrics.piloted}",
        "# HELP flywheel_model_reloads_total Times the served model changed.",
        "# TYPE flywheel_model_reloads_total counter",
        f"flywheel_model_reloads_total {metrics.reloads}",
        "# HELP flywheel_model_version Version of the model being served.",
        "# TYPE flywheel_model_version gauge",
        f'flywheel_model_version{{model="{current.name}"}} {current.version}',
    ]
    return "\n".join(lines) + "\n"
