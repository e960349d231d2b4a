"""The Faust app takes its broker credentials and replication from the settings."""

from __future__ import annotations

from faust.types.auth import SASLMechanism

from shared.settings import ServiceSettings
from shared.streams import _broker_credentials


def test_no_mechanism_means_no_credentials() -> None:
    assert _broker_credentials(ServiceSettings()) is None


def test_scram_settings_become_faust_credentials() -> None:
    settings = ServiceSettings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="bin-analytics",
        kafka_sasl_password="not-a-real-password",
    )
    credentials = _broker_credentials(settings)
    assert credentials is not None
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert credentials.username == "bin-analytics"
