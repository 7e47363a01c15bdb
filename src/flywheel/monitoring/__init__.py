"""Phase 4 from evidence: watch the champion in production and propose the loop-back it implies.

``monitor`` reads the prediction log (incrementally), judges each day or week — input and
prediction drift, live quality on labelled traffic, quality estimated without labels, latency —
and writes ``.flywheel/monitor/latest.json``; ``promote_on_traffic`` promotes a shadow or pilot
model on the labelled traffic both answered; ``gauges`` turns the latest result into Prometheus
gauges for the service's ``/metrics``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flywheel._lazy import lazy_attributes

if TYPE_CHECKING:
    from flywheel.monitoring._gauges import gauges
    from flywheel.monitoring._monitor import EXIT_CODES, MonitorPolicy, monitor, parse_since
    from flywheel.monitoring._promote import promote_on_traffic

# Loaded on first use: the service imports this package for its gauges and must not pay for SciPy.
__getattr__ = lazy_attributes(
    "flywheel.monitoring",
    {
        "EXIT_CODES": "_monitor",
        "MonitorPolicy": "_monitor",
        "monitor": "_monitor",
        "parse_since": "_monitor",
        "gauges": "_gauges",
        "promote_on_traffic": "_promote",
    },
)

__all__ = [
    "EXIT_CODES",
    "MonitorPolicy",
    "gauges",
    "monitor",
    "parse_since",
    "promote_on_traffic",
]
