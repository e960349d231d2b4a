"""Generated populations for demos, load tests and end-to-end checks."""
