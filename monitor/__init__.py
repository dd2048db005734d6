"""replywatch's monitor: config, store, ingest, waits and figures, the CLI and the runtime."""

__all__ = ["__version__"]

__version__ = "0.1.0"
