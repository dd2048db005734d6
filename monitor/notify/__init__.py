"""Per-conversation alerts: levels, the outbox, and the receivers they go to."""
