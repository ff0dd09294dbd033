"""deploy/k8s: each overlay renders with the real kustomize (kubectl) and every object is valid and safe.

Kubernetes objects are checked against the API schemas that kubernetes-validate ships (strict: unknown fields
fail). KEDA's ScaledObject has no schema there and none is vendored here, so it is checked against the
hand-written subset below (the CRD's types for exactly the fields we use, unknown fields refused) and its
``advanced.horizontalPodAutoscalerConfig.behavior`` against the real autoscaling/v2 HPA schema.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.deploy.dockerfile import entrypoint_argv, stages
from tests.deploy.settings_names import SECRETS, SETTINGS, shutdown_grace_s
from worker.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBE_VERSIONS = ("1.31", kubernetes_validate.latest_version())
EXPECTED_KINDS = {
    ("Namespace", "jobq"),
    ("ConfigMap", "jobq-config"),
    ("Deployment", "jobq-worker"),
    ("Deployment", "jobq-api"),
    ("Service", "jobq-api"),
    ("PodDisruptionBudget", "jobq-worker"),
    ("PodDisruptionBudget", "jobq-api"),
    ("ScaledObject", "jobq-worker"),
}
Obj = dict[str, Any]


# Rendering ------------------------------------------------------------------------------------------------------


@functools.cache
def kubectl() -> str:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("kubectl", path=path)
    if found is None:
        pytest.fail("kubectl is not installed; `make test` installs it (.ci/install-kubectl)")
    out = subprocess.run([found, "version", "--client", "-o", "json"], capture_output=True, text=True, check=True)
    kustomize = json.loads(out.stdout).get("kustomizeVersion", "v0")
    assert int(kustomize.lstrip("v").split(".")[0]) >= 5, f"kustomize {kustomize} is too old for `labels`"
    return found


@functools.cache
def _render(directory: str) -> str:
    proc = subprocess.run(
        [kubectl(), "kustomize", directory], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr
    return proc.stdout


def render(overlay: str) -> list[Obj]:
    """The overlay's objects (fresh copies: tests may modify them)."""
    return [obj for obj in yaml.safe_load_all(_render(str(K8S / "overlays" / overlay))) if obj]


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    if kind == "ConfigMap":  # the generator appends a hash of the content
        matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(name + "-")]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def config(objects: list[Obj]) -> dict[str, str]:
    data: dict[str, str] = find(objects, "ConfigMap", "jobq-config")["data"]
    return data


def container(deployment: Obj) -> Obj:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    c: Obj = containers[0]
    return c


def deployments(objects: list[Obj]) -> Iterator[Obj]:
    return (o for o in objects if o["kind"] == "Deployment")


def port_number(c: Obj, port: int | str) -> int:
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in c["ports"] if p["name"] == port]
    return int(number)


def cpu_m(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000


def memory_mi(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi)", quantity)
    assert match, f"write memory in Ki/Mi/Gi: {quantity}"
    return float(match.group(1)) * units[match.group(2)]


# Rendering and Kubernetes schemas --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_expected_objects(overlay: str) -> None:
    objects = render(overlay)
    namespace = {"dev": "jobq-dev", "prod": "jobq"}[overlay]
    found = set()
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "ConfigMap":
            name = name.rsplit("-", 1)[0]
        found.add((obj["kind"], "jobq" if obj["kind"] == "Namespace" else name))
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == namespace
        else:
            assert obj["metadata"]["namespace"] == namespace
    assert found == EXPECTED_KINDS


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_kubernetes_object_is_valid(overlay: str, version: str) -> None:
    for obj in render(overlay):
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # checked below against its own schema
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} invalid for Kubernetes {version}: {exc.message}")


def test_strict_validation_catches_a_misspelt_field() -> None:
    worker = find(render("prod"), "Deployment", "jobq-worker")
    worker["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 35
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, KUBE_VERSIONS[-1], strict=True)


def test_selectors_match_the_pods_they_select() -> None:
    objects = render("prod")
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments(objects)}
    for d in deployments(objects):
        assert d["spec"]["selector"]["matchLabels"].items() <= pods[d["metadata"]["name"]].items()
    for name in ("jobq-worker", "jobq-api"):
        selector = find(objects, "PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"]
        assert [p for p, labels in pods.items() if selector.items() <= labels.items()] == [name]
    service = find(objects, "Service", "jobq-api")["spec"]
    assert [p for p, labels in pods.items() if service["selector"].items() <= labels.items()] == ["jobq-api"]
    api = container(find(objects, "Deployment", "jobq-api"))
    assert port_number(api, service["ports"][0]["targetPort"]) == 8080


# The worker ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_runs_the_images_command_and_drains_before_the_kill(overlay: str) -> None:
    objects = render(overlay)
    worker = find(objects, "Deployment", "jobq-worker")
    c = container(worker)
    assert c["command"] + c["args"] == entrypoint_argv(ROOT / "deploy" / "Dockerfile") == ["jobq", "worker"]
    grace_s = shutdown_grace_s(config(objects))
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= grace_s + 5
    assert "replicas" not in worker["spec"], "KEDA owns the worker count"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_probes_and_metrics_use_jobq_http_port(overlay: str) -> None:
    objects = render(overlay)
    worker = find(objects, "Deployment", "jobq-worker")
    c = container(worker)
    http_port = int(config(objects)["JOBQ_HTTP_PORT"])
    assert http_port == 8081
    readiness = c["readinessProbe"]["httpGet"]
    assert (readiness["path"], port_number(c, readiness["port"])) == ("/readyz", http_port)
    liveness = c["livenessProbe"]
    if "exec" in liveness:
        assert liveness["exec"]["command"] == ["jobq", "check"]
    else:
        assert (liveness["httpGet"]["path"], port_number(c, liveness["httpGet"]["port"])) == ("/livez", http_port)
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == http_port
    assert annotations["prometheus.io/path"] == "/metrics"


def test_worker_rolls_a_few_at_a_time() -> None:
    strategy = find(render("prod"), "Deployment", "jobq-worker")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxSurge"] == "25%"
    assert strategy["rollingUpdate"]["maxUnavailable"] in (0, 1)


# Both deployments ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down(overlay: str) -> None:
    user = stages(ROOT / "deploy" / "Dockerfile")[-1].last("USER")
    assert user is not None
    for d in deployments(render(overlay)):
        pod = d["spec"]["template"]["spec"]
        c = container(d)
        sc = c["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert sc["runAsNonRoot"] is True
        assert str(sc["runAsUser"]) == user.value.split(":")[0] == "10001"
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["enableServiceLinks"] is False, "a Service named jobq-api would inject JOBQ_API_PORT=tcp://..."
        assert pod["automountServiceAccountToken"] is False
        [tmp] = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
        [volume] = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
        assert "emptyDir" in volume


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_are_requested_and_limited(overlay: str) -> None:
    for d in deployments(render(overlay)):
        resources = container(d)["resources"]
        assert cpu_m(resources["requests"]["cpu"]) <= cpu_m(resources["limits"]["cpu"])
        assert memory_mi(resources["requests"]["memory"]) <= memory_mi(resources["limits"]["memory"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_come_from_the_configmap_and_the_secret(overlay: str) -> None:
    objects = render(overlay)
    assert not [o for o in objects if o["kind"] == "Secret"], "never ship a Secret: reference jobq-secrets"
    configmap = find(objects, "ConfigMap", "jobq-config")
    data = configmap["data"]
    assert set(data) <= SETTINGS, f"not jobq settings: {set(data) - SETTINGS}"
    assert not set(data) & SECRETS, f"secrets in the ConfigMap: {set(data) & SECRETS}"
    for d in deployments(objects):
        c = container(d)
        sources = {(k, v["name"]) for source in c["envFrom"] for k, v in source.items()}
        assert sources == {("configMapRef", configmap["metadata"]["name"]), ("secretRef", "jobq-secrets")}
        env = {e["name"] for e in c.get("env", [])}
        assert env <= SETTINGS
        assert not env & SECRETS


def test_api_serves_on_all_interfaces_with_livez_probes() -> None:
    objects = render("prod")
    api = find(objects, "Deployment", "jobq-api")
    c = container(api)
    assert c["command"] + c["args"] == ["jobq", "api"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["JOBQ_API_HOST"] == "0.0.0.0"
    port = int(env["JOBQ_API_PORT"])
    assert [p["containerPort"] for p in c["ports"]] == [port] == [8080]
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["path"] == "/livez"
        assert port_number(c, c[probe]["httpGet"]["port"]) == port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_let_node_drains_proceed(overlay: str) -> None:
    for name in ("jobq-worker", "jobq-api"):
        spec = find(render(overlay), "PodDisruptionBudget", name)["spec"]
        assert spec.get("maxUnavailable") == 1, "minAvailable would block drains of a single replica"


# Overlays ---------------------------------------------------------------------------------------------------------


def test_prod_pins_the_image_and_dev_is_smaller() -> None:
    dev, prod = render("dev"), render("prod")
    for d in deployments(prod):
        image = container(d)["image"]
        assert re.fullmatch(r"[\w.-]+(:\d+)?/[\w./-]+(:\d+\.\d+\.\d+|@sha256:[0-9a-f]{64})", image), image
    for d in deployments(dev):
        assert "/" in container(d)["image"]
        assert ":" in container(d)["image"]

    def scaling(objects: list[Obj]) -> tuple[int, int]:
        spec = find(objects, "ScaledObject", "jobq-worker")["spec"]
        return spec["minReplicaCount"], spec["maxReplicaCount"]

    assert scaling(dev)[1] < scaling(prod)[1]
    assert scaling(dev)[0] <= scaling(prod)[0]
    replicas = [find(o, "Deployment", "jobq-api")["spec"]["replicas"] for o in (dev, prod)]
    assert replicas[0] < replicas[1]
    limits = [container(find(o, "Deployment", "jobq-worker"))["resources"]["limits"]["memory"] for o in (dev, prod)]
    assert memory_mi(limits[0]) < memory_mi(limits[1])


def test_no_kustomization_includes_the_example_secret() -> None:
    kustomizations = list(K8S.rglob("kustomization.yaml"))
    assert len(kustomizations) == 3
    for path in kustomizations:
        kustomization = yaml.safe_load(path.read_text())
        assert "secretGenerator" not in kustomization
        files = kustomization.get("resources", []) + [p["path"] for p in kustomization.get("patches", [])]
        assert files
        assert not [f for f in files if "secret" in f.lower()], path
    example = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert example["kind"] == "Secret"
    assert example["metadata"]["name"] == "jobq-secrets"
    assert set(example["stringData"]) <= SECRETS
    assert set(example["stringData"].values()) == {"change-me"}
    kubernetes_validate.validate(example, KUBE_VERSIONS[-1], strict=True)


def test_readme_covers_redis() -> None:
    text = (K8S / "README.md").read_text()
    for needle in ("noeviction", "appendonly yes", "JOBQ_REDIS_SENTINELS", "Redis Cluster is not supported"):
        assert needle in text


# KEDA ------------------------------------------------------------------------------------------------------------

_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_STR = {"type": "string"}
# The types of keda.sh/v1alpha1 ScaledObject (KEDA 2.x CRD) for the fields these manifests use, plus the other
# common ones; anything else is refused, so that a misspelt field fails here instead of being pruned silently.
SCALED_OBJECT_SUBSET = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {"apiVersion": _STR, "kind": _STR, "name": _STR, "envSourceContainerName": _STR},
                },
                "pollingInterval": _INT32,
                "cooldownPeriod": _INT32,
                "initialCooldownPeriod": _INT32,
                "idleReplicaCount": _INT32,
                "minReplicaCount": _INT32,
                "maxReplicaCount": _INT32,
                "fallback": {"type": "object"},
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"name": _STR, "behavior": {"type": "object"}},
                        },
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "scalingModifiers": {"type": "object"},
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": _STR,
                            "name": _STR,
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            "metadata": {"type": "object", "additionalProperties": _STR},
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "additionalProperties": False,
                                "properties": {"name": _STR, "kind": _STR},
                            },
                        },
                    },
                },
            },
        },
    },
}
PROMETHEUS_METADATA = {
    "type": "object",
    "required": ["serverAddress", "query", "threshold"],
    "additionalProperties": False,
    "properties": {
        "serverAddress": {"type": "string", "pattern": "^https?://"},
        "query": _STR,
        "threshold": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
        "activationThreshold": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
        "namespace": _STR,
        "ignoreNullValues": {"enum": ["true", "false"]},
        "unsafeSsl": {"enum": ["true", "false"]},
        "customHeaders": _STR,
        "queryParameters": _STR,
    },
}


def scaled_object(overlay: str) -> Obj:
    return find(render(overlay), "ScaledObject", "jobq-worker")


def validate_scaled_object(obj: Obj) -> None:
    jsonschema.Draft202012Validator(SCALED_OBJECT_SUBSET).validate(obj)
    for trigger in obj["spec"]["triggers"]:
        if trigger["type"] == "prometheus":
            jsonschema.Draft202012Validator(PROMETHEUS_METADATA).validate(trigger["metadata"])
    # KEDA hands `behavior` to the HorizontalPodAutoscaler it creates: check it against the real HPA schema.
    behavior = obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa-jobq-worker"},
        "spec": {
            "scaleTargetRef": obj["spec"]["scaleTargetRef"],
            "minReplicas": obj["spec"]["minReplicaCount"],
            "maxReplicas": obj["spec"]["maxReplicaCount"],
            "behavior": behavior,
        },
    }
    kubernetes_validate.validate(hpa, KUBE_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaled_object_is_well_formed(overlay: str) -> None:
    validate_scaled_object(scaled_object(overlay))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "minReplicaCont"), 1),
        (("spec", "maxReplicaCount"), "10"),
        (("spec", "advanced", "horizontalPodAutoscalerConfig", "behavior", "scaleDown", "stabilisationWindow"), 1),
        (("spec", "triggers", 0, "metadata", "threshold"), 10),
        (("spec", "triggers", 0, "metadata", "serverAdress"), "http://prometheus:9090"),
    ],
)
def test_scaled_object_checks_catch_mistakes(path: tuple[str | int, ...], value: object) -> None:
    obj = copy.deepcopy(scaled_object("prod"))
    node: Any = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        validate_scaled_object(obj)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaled_object_scales_the_worker_on_the_queue_backlog(overlay: str) -> None:
    objects = render(overlay)
    spec = find(objects, "ScaledObject", "jobq-worker")["spec"]
    target = spec["scaleTargetRef"]
    worker = find(objects, "Deployment", target["name"])
    assert (target["apiVersion"], target["kind"]) == (worker["apiVersion"], worker["kind"]) == ("apps/v1", "Deployment")
    assert container(worker)["args"] == ["worker"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], "minimum 1: the workers report the backlog"
    scale_down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 60
    gauges = {family.name for family in Metrics().registry.collect() if family.type == "gauge"}
    queue = config(objects)["JOBQ_QUEUE_NAME"]
    queried = set()
    for trigger in spec["triggers"]:
        assert trigger["type"] == "prometheus", "KEDA's redis scaler counts lists; the queue is a sorted set"
        query = trigger["metadata"]["query"]
        match = re.fullmatch(r'max\((\w+)\{queue="([^"]+)"\}\)', query)
        assert match, f"max() of one queue gauge (they are the same on every worker): {query}"
        assert match.group(1) in gauges
        assert match.group(2) == queue
        queried.add(match.group(1))
    assert "jobq_queue_ready_jobs" in queried
