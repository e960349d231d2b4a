"""The rendered kustomize overlays: hardened pods, real roles, real settings, probes."""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.catalogue import CHANNELS, SERVICES, topic
from shared.settings import ServiceSettings

gen = importlib.import_module("scripts.gen_k8s_topics")

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod", "prod-observability")
IMAGE = "bin-platform"
README = ROOT / "deploy" / "k8s" / "README.md"

# What each role serves over HTTP, read from services/*/__main__.py and the modules
# they start: "http" is the FastAPI app (/healthz, /readyz, /metrics on HTTP_PORT),
# "faust" Faust's web server (the same routes, shared/streams.py) on the port named,
# "metrics" prometheus_client's server on WORKER_METRICS_PORT, None nothing at all.
SERVES: dict[tuple[str, str], tuple[str | None, str | None]] = {
    ("registry", "api"): ("http", "HTTP_PORT"),
    ("registry", "relay"): (None, None),
    ("registry", "directory"): (None, None),
    ("registry", "import-reference"): (None, None),
    ("messaging", "api"): ("http", "HTTP_PORT"),
    ("messaging", "relay"): (None, None),
    ("messaging", "fanout"): ("faust", "FAUST_WEB_PORT"),
    ("messaging", "sender"): ("metrics", "WORKER_METRICS_PORT"),
    ("messaging", "status"): ("metrics", "WORKER_METRICS_PORT"),
    ("messaging", "gateway"): ("gateway", "GATEWAY_HTTP_PORT"),
    ("reports", "api"): ("http", "HTTP_PORT"),
    ("reports", "relay"): (None, None),
    ("analytics", "api"): ("http", "HTTP_PORT"),
    ("analytics", "worker"): ("faust", "WORKER_METRICS_PORT"),
}
# The Faust app of each Faust role (scripts/gen_k8s_topics.py builds them offline).
FAUST_ROLES = {("messaging", "fanout"): "bin-messaging-fanout",
               ("analytics", "worker"): "bin-analytics"}
# Where a role writes besides /tmp: the settings field naming the directory.
WRITTEN_DIRS = {("messaging", "fanout"): "FAUST_DATADIR",
                ("analytics", "worker"): "FAUST_DATA_ROOT",
                ("messaging", "gateway"): "GATEWAY_STORE_DIR"}
SINGLETONS = {("registry", "relay"), ("registry", "directory"), ("messaging", "relay"),
              ("messaging", "status"), ("reports", "relay"), ("messaging", "gateway")}
NOT_IN_PROD = {("messaging", "gateway")}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Every overlay rendered by the pinned kustomize (k8s-validate.sh --render-json)."""
    cache = ROOT / ".cache" / "k8s" / "bin"
    if not cache.exists() and not (shutil.which("go") and shutil.which("node")):
        pytest.skip("kustomize is not cached and go/node are missing: make k8s-validate")
    out = tmp_path_factory.mktemp("rendered")
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "k8s-validate.sh"), "--render-json", str(out)],
        check=True, capture_output=True, timeout=600,
    )
    return {
        name: json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        for name in OVERLAYS
    }


def workloads(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] in ("Deployment", "Job")]


def product_workloads(objects: list[dict]) -> list[tuple[dict, dict, str, str]]:
    """(workload, container, service, role) of every pod that runs the product image."""
    found = []
    for workload in workloads(objects):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            if IMAGE in container["image"]:
                module, role = container["args"][0], container["args"][1]
                found.append((workload, container, module.split(".", 1)[1], role))
    return found


def config_maps(objects: list[dict]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}


def environment(objects: list[dict], container: dict) -> dict[str, str | None]:
    """The container's variables: ConfigMap values, None for those from a Secret."""
    maps = config_maps(objects)
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value")
    return env


def roles_of(service: str) -> set[str]:
    """The role names the service's __main__ hands to shared.service.main."""
    tree = ast.parse((ROOT / "services" / service / "__main__.py").read_text("utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            names |= {k.value for k in node.keys if isinstance(k, ast.Constant)}
    return {n for n in names if isinstance(n, str)}


def settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"services.{service}.settings")
    return next(
        value for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
    )


def documented_secret_keys() -> dict[str, set[str]]:
    """The keys README.md tells the operator to put into each <service>-secrets."""
    text = README.read_text(encoding="utf-8")
    found: dict[str, set[str]] = {service: set() for service in SERVICES}
    for block in re.findall(r"create secret generic (\w+)-secrets(.*?)(?:\n(?!\s)|\Z)",
                            text, flags=re.S):
        service, rest = block
        found[service] |= set(re.findall(r"--from-literal=([A-Z_]+)=", rest))
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_hardened(rendered: dict, overlay: str) -> None:
    for workload in workloads(rendered[overlay]):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_written_paths_are_empty_dirs(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    for workload, container, service, role in product_workloads(objects):
        volumes = {
            v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])
        }
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        assert "emptyDir" in mounts["/tmp"], workload["metadata"]["name"]
        written = WRITTEN_DIRS.get((service, role))
        if written:
            assert written.lower() in settings_class(service).model_fields, written
            path = environment(objects, container)[written]
            assert path and "emptyDir" in mounts[path], (service, role, written)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_runs_a_role_of_its_service(rendered: dict, overlay: str) -> None:
    found = set()
    for workload, container, service, role in product_workloads(rendered[overlay]):
        assert service in SERVICES, workload["metadata"]["name"]
        assert role in roles_of(service), (service, role)
        assert workload["spec"]["template"]["spec"]["serviceAccountName"] == service
        if role == "sender":
            args = container["args"]
            assert args[2] == "--channel" and args[3] in CHANNELS, args
        if overlay != "dev":
            assert (service, role) not in NOT_IN_PROD, (overlay, service, role)
        found.add((service, role))
    # Every long-running role of every service has its workload.
    assert {key for key in SERVES if key not in NOT_IN_PROD} <= found, overlay


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_is_a_settings_field(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    for _, container, service, role in product_workloads(objects):
        fields = {name.upper() for name in settings_class(service).model_fields}
        env = environment(objects, container)
        unknown = set(env) - fields
        assert not unknown, (service, role, unknown)
        assert env.get("ENVIRONMENT") == "production", (service, role)


def test_documented_secrets_are_fields_and_cover_every_secret() -> None:
    documented = documented_secret_keys()
    for service in SERVICES:
        cls = settings_class(service)
        fields = {name.upper() for name in cls.model_fields}
        assert documented[service] <= fields, (service, documented[service] - fields)
        needed = {name.upper() for name in cls.model_construct().secret_values()}
        # Keys that hold no secret for the service come from its ConfigMap instead.
        maps = config_maps(_base_objects())
        from_config = set(maps[f"{service}-config"])
        assert needed <= documented[service] | from_config, (service, needed)


def _base_objects() -> list[dict]:
    """The ConfigMaps of the base, read from the committed YAML by a tiny reader."""
    found = []
    for path in sorted((ROOT / "deploy" / "k8s" / "base" / "services").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"kind: ConfigMap\nmetadata:\n  name: (\S+)\n.*?\ndata:\n"
                                 r"((?:  .*\n)+)", text):
            keys = re.findall(r"^  ([A-Z_]+):", match.group(2), flags=re.M)
            found.append({"kind": "ConfigMap", "metadata": {"name": match.group(1)},
                          "data": dict.fromkeys(keys, "")})
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_use_what_each_role_serves(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    for workload, container, service, role in product_workloads(objects):
        kind, port_variable = SERVES[(service, role)]
        name = workload["metadata"]["name"]
        if kind is None:
            assert "readinessProbe" not in container and "livenessProbe" not in container
            assert not container.get("ports"), name
            continue
        port = int(environment(objects, container).get(port_variable) or 0) or int(
            settings_class(service).model_fields[port_variable.lower()].default
        )
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        paths = {
            "http": ("/readyz", "/healthz"),
            "faust": ("/readyz", "/healthz"),
            "metrics": ("/metrics", "/metrics"),
        }
        for probe, path in zip(("readinessProbe", "livenessProbe"), paths.get(kind, (None, None))):
            check = container[probe]
            if kind == "gateway":
                assert ports[check["tcpSocket"]["port"]] in (port, 2525), name
                continue
            assert check["httpGet"]["path"] == path, (name, probe)
            assert ports[check["httpGet"]["port"]] == port, (name, probe)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shutdown_leaves_time_to_commit(rendered: dict, overlay: str) -> None:
    for workload, _, service, role in product_workloads(rendered[overlay]):
        grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        minimum = 60 if (service, role) in FAUST_ROLES or role == "sender" else 10
        assert grace >= minimum, workload["metadata"]["name"]


def _inputs(service: str, role: str, container: dict) -> list[int]:
    """Partition counts of what a worker role reads."""
    if (service, role) in FAUST_ROLES:
        app = next(a for a in gen.faust_apps() if a.app_id == FAUST_ROLES[(service, role)])
        return [topic(name).partitions for name in app.sources]
    if role == "sender":
        return [topic(f"messaging.deliveries.{container['args'][3]}.v1").partitions]
    return [1]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_replicas_stay_within_partitions(rendered: dict, overlay: str) -> None:
    for workload, container, service, role in product_workloads(rendered[overlay]):
        if workload["kind"] != "Deployment" or role == "api":
            continue
        replicas = workload["spec"]["replicas"]
        if (service, role) in SINGLETONS:
            assert replicas == 1, workload["metadata"]["name"]
            assert workload["spec"]["strategy"]["type"] == "Recreate"
        else:
            assert 1 <= replicas <= max(_inputs(service, role, container)), (
                workload["metadata"]["name"], replicas,
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_http_apps_have_service_hpa_and_pdb(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    by_kind: dict[str, list[dict]] = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    accounts = {o["metadata"]["name"] for o in by_kind["ServiceAccount"]}
    assert set(SERVICES) <= accounts
    for workload, container, service, role in product_workloads(objects):
        if role != "api":
            continue
        name = workload["metadata"]["name"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        hpas = [h for h in by_kind["HorizontalPodAutoscaler"]
                if h["spec"]["scaleTargetRef"]["name"] == name]
        assert len(hpas) == 1, name
        pdbs = [p for p in by_kind["PodDisruptionBudget"]
                if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert pdbs, name
        services = [s for s in by_kind["Service"]
                    if s["spec"]["selector"].items() <= labels.items()]
        assert services, name
        ports = {p["name"] for p in container["ports"]}
        for svc in services:
            for port in svc["spec"]["ports"]:
                assert port["name"] and port["targetPort"] in ports, (name, port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_in_the_repository(rendered: dict, overlay: str) -> None:
    assert not [o for o in rendered[overlay] if o["kind"] == "Secret"]


@pytest.mark.parametrize("overlay", ("prod", "prod-observability"))
def test_prod_kafka_has_kraft_node_pools_over_three_zones(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    kafka = next(o for o in objects if o["kind"] == "Kafka")
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    assert kafka["spec"]["kafka"]["rack"]["topologyKey"] == "topology.kubernetes.io/zone"
    pools = {tuple(p["spec"]["roles"]): p for p in objects if p["kind"] == "KafkaNodePool"}
    assert pools[("controller",)]["spec"]["replicas"] == 3
    assert pools[("broker",)]["spec"]["replicas"] >= 3
    topics = [o for o in objects if o["kind"] == "KafkaTopic"]
    assert all(t["spec"]["replicas"] == 3 for t in topics)
    mongo = next(o for o in objects if o["kind"] == "MongoDBCommunity")
    assert mongo["spec"]["members"] == 3
    assert {u["name"] for u in mongo["spec"]["users"]} == set(SERVICES)
    for user in mongo["spec"]["users"]:
        assert user["roles"] == [{"name": "readWrite", "db": f"bin_{user['name']}"}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_senders_leave_the_cluster(rendered: dict, overlay: str) -> None:
    objects = rendered[overlay]
    for policy in (o for o in objects if o["kind"] == "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                if "ipBlock" in peer:
                    selector = policy["spec"]["podSelector"]["matchLabels"]
                    assert selector == {
                        "app.kubernetes.io/name": "messaging",
                        "bin.be/provider-client": "true",
                    }, policy["metadata"]["name"]
    for workload, _, service, role in product_workloads(objects):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert ("bin.be/provider-client" in labels) == (role == "sender"), (service, role)
