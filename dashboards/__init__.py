"""Grafana dashboards built from code."""

__all__: list[str] = []
