"""The registry service: police zones, BINs, members and their consents."""
