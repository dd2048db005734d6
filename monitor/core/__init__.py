"""Pure rules: waits, figures, profiles, business hours, durations, escaping. No I/O imports."""
