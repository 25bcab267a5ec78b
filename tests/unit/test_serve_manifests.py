"""The GKE manifests of `fraudpipe serve`: valid, restricted, read-only share, probed."""

from __future__ import annotations

from pathlib import Path

import yaml

from workflows.admission import violations
from workflows.validate import validate_file

K8S = Path(__file__).resolve().parents[2] / "deployments" / "k8s"


def documents() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((K8S / "serve.yaml").read_text())}


def test_the_manifests_pass_fraudpipe_validate_and_are_applied_by_kustomize():
    assert validate_file(K8S / "serve.yaml") == []
    assert "serve.yaml" in yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert set(documents()) == {"Deployment", "Service", "HorizontalPodAutoscaler",
                                "PodDisruptionBudget"}


def test_the_pods_pass_pod_security_restricted_with_a_read_only_share():
    deployment = documents()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert violations(pod, "restricted") == []
    container = pod["containers"][0]
    share = next(m for m in container["volumeMounts"] if m["mountPath"] == "/mnt/fileserver")
    assert share["readOnly"] is True
    claim = next(v for v in pod["volumes"] if v["name"] == share["name"])
    assert claim["persistentVolumeClaim"] == {"claimName": "fileserver-claim",
                                              "readOnly": True}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["command"][:2] == ["fraudpipe", "serve"]
    assert "--shared" in container["command"]  # the replicas share the day's windows


def test_the_service_is_cluster_internal_and_the_autoscaler_and_budget_target_the_pods():
    docs = documents()
    labels = docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert docs["Service"]["spec"]["type"] == "ClusterIP"
    assert docs["Service"]["spec"]["selector"] == labels
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["minReplicas"] >= 2
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
