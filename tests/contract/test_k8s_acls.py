"""The Strimzi KafkaUser ACLs: least privilege per service, contacts for messaging only."""

from __future__ import annotations

import importlib
from pathlib import Path

from shared.catalogue import SERVICES, all_topics, consumed_by, published_by

gen = importlib.import_module("scripts.gen_k8s_topics")

CONTACTS = "registry.contacts.v1"
ROOT = Path(__file__).resolve().parents[2]


def users() -> dict[str, dict]:
    docs = gen.parse_documents(gen.USERS_FILE.read_text(encoding="utf-8"))
    return {doc["metadata"]["labels"]["app.kubernetes.io/name"]: doc for doc in docs}


def topic_acls(service: str) -> list[dict]:
    acls = users()[service]["spec"]["authorization"]["acls"]
    return [acl for acl in acls if acl["resource"]["type"] == "topic"]


def covers(acl: dict, topic_name: str) -> bool:
    resource = acl["resource"]
    if resource["patternType"] == "literal":
        return resource["name"] in (topic_name, "*")
    return topic_name.startswith(resource["name"])


def test_one_scram_user_per_service() -> None:
    found = users()
    assert sorted(found) == sorted(SERVICES)
    for service, doc in found.items():
        assert doc["metadata"]["name"] == gen.kafka_user_name(service)
        assert doc["spec"]["authentication"]["type"] == "scram-sha-512"


def test_only_messaging_reads_contacts() -> None:
    readers = {
        service
        for service in SERVICES
        for acl in topic_acls(service)
        if covers(acl, CONTACTS) and {"Read", "All"} & set(acl["operations"])
    }
    assert readers == {"messaging"}


def test_each_service_writes_only_its_own_topics() -> None:
    catalogue = {topic.name for topic in all_topics()}
    for service in SERVICES:
        own = {topic.name for topic in published_by(service)}
        own |= {topic.dlq for topic in consumed_by(service)}
        for acl in topic_acls(service):
            if not {"Write", "All", "Create"} & set(acl["operations"]):
                continue
            resource = acl["resource"]
            if resource["patternType"] == "prefix":
                prefixes = {f"{app_id}-" for app_id in gen.faust_app_ids(service)}
                assert resource["name"] in prefixes, acl
                assert not any(covers(acl, name) for name in catalogue), acl
            else:
                assert resource["name"] in own, (service, acl)


def test_each_service_can_do_its_job() -> None:
    for service in SERVICES:
        acls = topic_acls(service)

        def allowed(name: str, operation: str, acls: list[dict] = acls) -> bool:
            return any(covers(a, name) and operation in a["operations"] for a in acls)

        for topic in published_by(service):
            assert allowed(topic.name, "Write"), (service, topic.name)
        for topic in consumed_by(service):
            assert allowed(topic.name, "Read"), (service, topic.name)
            assert allowed(topic.dlq, "Write"), (service, topic.dlq)
        for app in gen.faust_apps():
            if app.service != service:
                continue
            for internal in app.topics:
                for operation in ("Read", "Write", "Create"):
                    assert allowed(internal.name, operation), (service, internal.name)


def test_faust_and_plain_groups_are_the_ones_the_services_use() -> None:
    for service in SERVICES:
        groups = [
            acl["resource"] for acl in users()[service]["spec"]["authorization"]["acls"]
            if acl["resource"]["type"] == "group"
        ]
        literal = {g["name"] for g in groups if g["patternType"] == "literal"}
        prefixes = {g["name"] for g in groups if g["patternType"] == "prefix"}
        assert literal == set(gen.faust_app_ids(service)), service
        assert prefixes == set(gen.PLAIN_GROUP_PREFIXES[service]), service
    # The plain group names as the services build them.
    senders = (ROOT / "services" / "messaging" / "senders.py").read_text("utf-8")
    assert 'f"{settings.sender_group_prefix}-{channel}"' in senders
    from services.messaging.settings import MessagingSettings

    prefix = MessagingSettings.model_fields["sender_group_prefix"].default
    assert gen.PLAIN_GROUP_PREFIXES["messaging"] == (f"{prefix}-",)
    reports = (ROOT / "services" / "reports" / "streams.py").read_text("utf-8")
    assert 'f"reports-zones-' in reports


def test_only_messaging_internal_topics_carry_contacts() -> None:
    for app in gen.faust_apps():
        reads_contacts = CONTACTS in app.sources
        assert reads_contacts == (app.service == "messaging"), app.app_id
        for internal in app.topics:
            bounded = "segment.ms" in internal.configs
            assert bounded == reads_contacts, internal.name


def test_no_user_has_cluster_or_wildcard_rights() -> None:
    for service in SERVICES:
        for acl in users()[service]["spec"]["authorization"]["acls"]:
            assert acl["resource"]["type"] in ("topic", "group"), acl
            assert acl["resource"].get("name") not in ("*", ""), acl
            assert "All" not in acl["operations"], acl
