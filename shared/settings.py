"""The settings every service shares; each service extends them with its own."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_PREFIX = "dev-only-"


class ServiceSettings(BaseSettings):
    """Read once at start-up from the environment; the defaults are the local ones."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: str = "development"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    # Replication of the topics Faust declares itself (changelogs, repartitions).
    kafka_topic_replication_factor: int = 1
    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = ""
    log_level: str = "INFO"
    otel_exporter_otlp_endpoint: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    worker_metrics_port: int = 0
    reference_dir: Path = Field(default=ROOT.parent / "shared" / "data")
    jwt_secret: str = DEV_SECRET_PREFIX + "jwt-signing-key-change-me-0123456789"
    service_name: str = "bin"
    # JSON object of key id -> base64 AES-256 key sealing members' contact details.
    contacts_keys: str = (
        DEV_SECRET_PREFIX + '{"dev-1": "ZGV2LW9ubHktY29udGFjdHMta2V5LTAxMjM0NTY3ODk="}'
    )
    contacts_active_key_id: str = "dev-1"

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_development(self) -> ServiceSettings:
        if self.environment != "development":
            for name, value in self.secret_values().items():
                if value.startswith(DEV_SECRET_PREFIX):
                    raise ValueError(f"{name} still holds the development secret")
        return self

    def secret_values(self) -> dict[str, str]:
        """The secrets that must be replaced outside development."""
        return {"jwt_secret": self.jwt_secret, "contacts_keys": self.contacts_keys}

    def database_name(self) -> str:
        """The service's own database: one per service."""
        return self.mongodb_database or f"bin_{self.service_name}"

    def kafka_client_options(self) -> dict[str, object]:
        """Connection options shared by every aiokafka client of the service."""
        options: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap_servers.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            options.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password,
            )
        return options
