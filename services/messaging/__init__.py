"""The messaging service: alerts from police zones to BIN members."""
