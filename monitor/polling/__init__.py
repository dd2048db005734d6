"""Polling accounts: the coordinator's policy, the host that runs it, and its schedulers."""
