"""The analytics service of the BIN platform."""
