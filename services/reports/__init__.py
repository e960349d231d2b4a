"""The anonymous drug-production tip line."""
