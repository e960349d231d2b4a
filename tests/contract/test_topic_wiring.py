"""Every topic a service names in its code is in the catalogue, and wired both ways."""

from __future__ import annotations

import re
from pathlib import Path

from shared import catalogue

ROOT = Path(__file__).resolve().parents[2]
TOPIC_NAME = re.compile(
    r"""["']((?:registry|messaging|reports|analytics)\.[a-z0-9.{}-]+\.v\d+(?:\.dlq)?)["']"""
)


def topics_named_in(service: str) -> set[str]:
    """Topic names written as literals in a service's code."""
    found: set[str] = set()
    for path in (ROOT / "services" / service).rglob("*.py"):
        found.update(TOPIC_NAME.findall(path.read_text()))
    expanded = set()
    for name in found:
        if "{channel}" in name:
            expanded.update(name.replace("{channel}", c) for c in catalogue.CHANNELS)
        else:
            expanded.add(name)
    return expanded


def test_every_topic_named_in_a_service_is_in_the_catalogue() -> None:
    known = {t.name for t in catalogue.all_topics()}
    for service in catalogue.SERVICES:
        unknown = topics_named_in(service) - known
        assert not unknown, f"{service} names topics missing from the catalogue: {unknown}"


def test_a_service_only_names_topics_it_publishes_or_consumes() -> None:
    for service in catalogue.SERVICES:
        allowed = {t.name for t in catalogue.published_by(service)}
        allowed |= {t.name for t in catalogue.consumed_by(service)}
        allowed |= {t.dlq for t in catalogue.consumed_by(service)}
        stray = topics_named_in(service) - allowed
        assert not stray, f"{service} uses topics the catalogue does not wire to it: {stray}"


def test_every_consumed_topic_has_a_producer_and_every_producer_is_a_service() -> None:
    for topic in catalogue.TOPICS:
        assert topic.producer in catalogue.SERVICES, topic.name
        assert topic.owner == topic.producer, f"{topic.name} is written by its owner only"
        for consumer in topic.consumers:
            assert consumer in catalogue.SERVICES, (topic.name, consumer)


def test_topic_names_follow_the_convention() -> None:
    pattern = re.compile(r"^(registry|messaging|reports|analytics)\.[a-z0-9.-]+\.v\d+$")
    for topic in catalogue.TOPICS:
        assert pattern.match(topic.name), topic.name
        assert topic.cleanup_policy in ("compact", "delete")
        assert topic.partitions >= 1


def test_the_contacts_topic_is_read_by_messaging_only_and_compacts_quickly() -> None:
    contacts = catalogue.topic("registry.contacts.v1")
    assert contacts.consumers == ("messaging",)
    assert contacts.cleanup_policy == "compact"
    assert int(contacts.configs["max.compaction.lag.ms"]) <= 3600 * 1000


def test_every_event_model_has_a_topic_in_the_catalogue() -> None:
    from shared.events import EVENT_MODELS

    values = {v for t in catalogue.TOPICS for v in (t.value, *t.also)}
    for model in EVENT_MODELS:
        assert model.__name__ in values, model.__name__
        assert model.TOPIC in {
            t.name for t in catalogue.TOPICS if model.__name__ in (t.value, *t.also)
        } or "{" in model.TOPIC, model.__name__
