"""The HTTP app: /metrics, /healthz and the webhook intake."""
