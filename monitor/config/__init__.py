"""The TOML config: its schema, loading, and the secrets it names."""
