"""Prometheus exposition: the metric specs, the process registry, the figures text."""
