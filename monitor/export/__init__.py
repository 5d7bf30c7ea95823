"""Prometheus export: /metrics from the engine's process (`MetricsSink`)."""

from monitor.export.sink import MetricsSink

__all__ = ["MetricsSink"]
