"""The long-running monitor: the host, the rounds and the HTTP app composed."""
