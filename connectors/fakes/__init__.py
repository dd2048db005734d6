"""Local fake servers of the platforms' APIs, for tests and ``replywatch demo``."""

__all__: list[str] = []
