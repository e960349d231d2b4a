"""What every service of the BIN platform needs the same way: events, topics, telemetry."""
