"""The four services of the BIN platform."""
