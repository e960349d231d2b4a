"""Settings of the messaging service, read once at start-up from the environment."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from shared.catalogue import Topic, all_topics
from shared.events import Delivery
from shared.settings import ROOT, ServiceSettings

LOW_URGENCY_EMAIL_TOPIC = "messaging.deliveries.email-low.v1"


class MessagingSettings(ServiceSettings):
    """Everything the messaging service can be configured with."""

    service_name: str = "messaging"
    http_port: int = 8002
    # Empty means <reference_dir>/cap/CAP-v1.2.xsd.
    cap_schema_path: Path | None = None
    public_base_url: str = ""
    alert_default_validity_s: int = 24 * 3600
    # Put before the name of every messaging.* topic. Empty in a deployment; tests
    # and benchmarks set their own so that the running stack never sees their
    # alerts and deliveries, and theirs never see the stack's.
    messaging_topic_prefix: str = ""
    # The same for the registry.* topics the service reads: tests and benchmarks
    # publish their own registry snapshots there instead of replaying everyone's.
    registry_topic_prefix: str = ""

    # Fan-out worker (Faust).
    faust_app_id: str = "bin-messaging-fanout"
    faust_web_port: int = 6066
    faust_datadir: Path = ROOT / ".run" / "faust"
    fanout_partitions: int = 4
    # Stage 2 writes the deliveries of up to this many BINs before it waits for
    # the broker's confirmation of all of them.
    fanout_batch_bins: int = 50
    # How soon the group gives a dead worker's partitions to the others, or to the
    # same worker restarted; Faust's own default (60 s) stalls a restart that long.
    fanout_session_timeout_s: float = 15.0

    # Consumer groups; tests give each run its own.
    sender_group_prefix: str = "messaging-sender"
    status_group: str = "messaging-status"

    # Local providers (role `gateway`) and where the senders reach them.
    gateway_host: str = "127.0.0.1"
    gateway_http_port: int = 8025
    gateway_smtp_port: int = 2525
    gateway_store_dir: Path = ROOT / ".run" / "gateway"
    gateway_url: str = "http://127.0.0.1:8025"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_connections: int = 4
    mail_from: str = "bin-alerts@messaging.example"

    # Pacing per provider; 0 means unthrottled (benchmarks only).
    sms_rate_per_s: float = 100.0
    voice_max_concurrent_calls: int = 600
    voice_rate_per_s: float = 50.0
    email_rate_per_s: float = 200.0
    app_rate_per_s: float = 500.0
    provider_batch_size: int = 100
    sender_batch_size: int = 500

    # Retries of temporary failures.
    retry_base_s: float = 1.0
    retry_cap_s: float = 60.0
    give_up_after_s: float = 900.0
    # How far back a sender remembers the keys it handed over: the longest an
    # alert stays valid, after which its deliveries are not sent anyway.
    sent_keys_window_s: float = 7 * 24 * 3600.0
    provider_timeout_s: float = 10.0
    sms_max_segments: int = 3

    # Coordinators' mail (POST /v1/mail).
    # Where members' unsubscribe links point: the registry's public address.
    registry_public_url: str = "http://127.0.0.1:8001"
    # Replies go to reply+<mail id>@<this domain>; its MX is the platform's relay.
    mail_relay_domain: str = "relay.messaging.example"
    # The decoded size of all attachments of one mail together.
    mail_attachments_max_bytes: int = 5 * 1024 * 1024
    # How many low-urgency mails the e-mail sender hands over at a time between
    # two looks at the urgent lane: the most an urgent alert can wait behind.
    low_urgency_chunk: int = 20
    # The local SMTP server refuses bigger messages (attachments travel in base64).
    gateway_smtp_max_bytes: int = 16 * 1024 * 1024

    def schema_path(self) -> Path:
        """The CAP 1.2 schema documents are validated against."""
        return self.cap_schema_path or self.reference_dir / "cap" / "CAP-v1.2.xsd"

    def topic(self, name: str) -> str:
        """The name this deployment gives a messaging topic of the catalogue."""
        return f"{self.messaging_topic_prefix}{name}"

    def registry_topic(self, name: str) -> str:
        """The name this deployment reads a registry topic of the catalogue under."""
        return f"{self.registry_topic_prefix}{name}"

    def prefixed_topics(self) -> list[Topic]:
        """The catalogue's topics this deployment renames, to create before use."""
        prefixes = {
            "messaging": self.messaging_topic_prefix,
            "registry": self.registry_topic_prefix,
        }
        return [
            replace(topic, name=prefixes[topic.owner] + topic.name)
            for topic in all_topics()
            if prefixes.get(topic.owner)
        ]

    def delivery_topic(self, channel: str, *, low_urgency: bool = False) -> str:
        """The topic a channel's deliveries travel on; e-mail has a low-urgency lane."""
        if low_urgency and channel == "email":
            return self.topic(LOW_URGENCY_EMAIL_TOPIC)
        return self.topic(Delivery.TOPIC.format(channel=channel))

    def rate_per_s(self, channel: str) -> float:
        """The configured rate of one channel's provider; 0 is unthrottled."""
        return {
            "sms": self.sms_rate_per_s,
            "voice": self.voice_rate_per_s,
            "email": self.email_rate_per_s,
            "app": self.app_rate_per_s,
        }[channel]


@lru_cache(maxsize=1)
def get_settings() -> MessagingSettings:
    """The service's settings, read on first use."""
    return MessagingSettings()
