"""Alert rules, their tests, the runbook and the per-conversation alert pushers."""

__all__: list[str] = []
