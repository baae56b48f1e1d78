"""deploy/helm/mlmodel-operator: lint, schema, what it renders, and a real install into the local cluster."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import tomllib
import uuid

import localcluster
import pytest
import yaml
from packaging_support import (
    CHART,
    CRD_PATH,
    MONITORING_ON,
    REPO,
    assert_restricted,
    deployment_available,
    documents,
    one,
    run,
    wait_for,
)

from mlmodel_operator.cli import parse_args
from mlmodel_operator.settings import Settings

LIVENESS = "http://0.0.0.0:8080/healthz"


def template(helm_bin: str, *args: str, release: str = "mlmodel-operator") -> list[dict]:
    return documents(run(helm_bin, "template", release, str(CHART), "--namespace", "mlmodel-system", *args))


def operator_container(docs: list[dict]) -> dict:
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def test_lint_is_clean(helm_bin):
    for values in (
        [],
        [
            "--set",
            "watchNamespaces={models,staging}",
            "--set",
            "namespace.create=true",
            "--set",
            "namespace.name=mlmodel-system",
            "--set",
            "rbac.namespaced=true",
        ],
        [*MONITORING_ON, "--set", "image.digest=sha256:" + "0" * 64],
    ):
        output = run(helm_bin, "lint", "--strict", str(CHART), *values)
        assert "[WARNING]" not in output and "[ERROR]" not in output, output
        assert "0 chart(s) failed" in output


def test_chart_crd_is_a_link_to_the_one_generated_file():
    link = CHART / "crds" / CRD_PATH.name
    assert link.is_symlink() and link.resolve() == CRD_PATH.resolve()
    assert [p.name for p in (CHART / "crds").iterdir()] == [CRD_PATH.name]


def test_the_packaged_chart_holds_the_crd_itself(helm_bin, tmp_path):
    """`helm package` follows the link: the archive carries the file's content, not a link."""
    run(helm_bin, "package", str(CHART), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("*.tgz")
    with tarfile.open(archive) as tar:
        member = tar.getmember(f"{CHART.name}/crds/{CRD_PATH.name}")
        assert member.isfile()
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == CRD_PATH.read_bytes()


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]
    assert re.fullmatch(r">=1\.\d+\.0-0", chart["kubeVersion"])
    for name in ("values.yaml", "values.schema.json", "templates/_helpers.tpl", "templates/NOTES.txt", "README.md"):
        assert (CHART / name).is_file(), name


def test_cluster_role_matches_the_shared_rbac(helm_bin):
    shipped = yaml.safe_load((REPO / "deploy" / "rbac" / "cluster_role.yaml").read_text())
    assert one(template(helm_bin), "ClusterRole")["rules"] == shipped["rules"]


def test_leader_election_rbac_names_the_releases_own_lease(helm_bin):
    shipped = yaml.safe_load((REPO / "deploy" / "rbac" / "leader_election_role.yaml").read_text())
    docs = template(helm_bin, release="alpha")
    role, binding = one(docs, "Role"), one(docs, "RoleBinding")
    lease_name = parse_args(operator_container(docs)["args"]).lease_name
    assert lease_name == "alpha-mlmodel-operator"
    expected = [
        dict(rule, resourceNames=[lease_name]) if "resourceNames" in rule else rule for rule in shipped["rules"]
    ]
    assert role["rules"] == expected
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "mlmodel-system"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": one(docs, "ServiceAccount")["metadata"]["name"],
            "namespace": "mlmodel-system",
        }
    ]


def test_two_replicas_with_a_disruption_budget_and_one_replica_without(helm_bin):
    docs = template(helm_bin)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert one(docs, "PodDisruptionBudget")["spec"] == {"minAvailable": 1, "selector": deployment["spec"]["selector"]}
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert (
        anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["labelSelector"]
        == deployment["spec"]["selector"]
    )
    single = template(helm_bin, "--set", "replicas=1")
    assert one(single, "Deployment")["spec"]["replicas"] == 1
    assert not [doc for doc in single if doc["kind"] == "PodDisruptionBudget"]


def test_cluster_scoped_names_contain_the_release_name(helm_bin):
    for release in ("alpha", "beta"):
        docs = template(helm_bin, release=release)
        role, binding = one(docs, "ClusterRole"), one(docs, "ClusterRoleBinding")
        assert release in role["metadata"]["name"] and release in binding["metadata"]["name"]
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": one(docs, "ServiceAccount")["metadata"]["name"],
                "namespace": "mlmodel-system",
            }
        ]
    assert (
        one(template(helm_bin, release="alpha"), "ClusterRole")["metadata"]["name"]
        != one(template(helm_bin, release="beta"), "ClusterRole")["metadata"]["name"]
    )


def test_default_deployment_matches_the_kustomize_base(helm_bin):
    docs = template(helm_bin)
    assert not [doc for doc in docs if doc["kind"] == "Namespace"], "the Namespace is opt-in"
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = operator_container(docs)
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert pod["automountServiceAccountToken"] is True
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert container["command"] == ["mlmodel-operator"]
    args = parse_args(container["args"])
    assert args.all_namespaces and args.liveness == LIVENESS
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert args.metrics_address == "0.0.0.0:8081"
    assert container["image"] == "ghcr.io/mlmodel-operator/mlmodel-operator:0.1.0"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["MLMODEL_OPERATOR_DEFAULT_IMAGE"] == Settings().default_image
    assert set(container["resources"]) == {"requests", "limits"}
    assert_restricted(pod, container)
    # Selector labels never include the version (Deployment selectors are immutable).
    assert set(deployment["spec"]["selector"]["matchLabels"]) == {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
    }


def test_watch_namespaces_and_created_namespace(helm_bin):
    docs = template(
        helm_bin,
        "--set",
        "watchNamespaces={models,team-*}",
        "--set",
        "namespace.create=true",
        "--set",
        "namespace.name=ml-operator",
    )
    args = parse_args(operator_container(docs)["args"])
    assert args.namespaces == ["models", "team-*"] and not args.all_namespaces
    namespace = one(docs, "Namespace")
    assert namespace["metadata"]["name"] == "ml-operator"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {doc["metadata"]["namespace"] for doc in docs if doc["kind"] in ("Deployment", "ServiceAccount")} == {
        "ml-operator"
    }
    assert one(docs, "ClusterRoleBinding")["subjects"][0]["namespace"] == "ml-operator"


@pytest.mark.parametrize(
    "bad",
    [
        ["--set", "unknownKey=1"],
        ["--set", "image.unknown=1"],
        ["--set", "logFormat=xml"],
        ["--set", "image.pullPolicy=Sometimes"],
        ["--set", "namespace.create=yes-please"],
        ["--set", "resources.requests.gpu=1"],
        ["--set-json", 'watchNamespaces="models"'],
        ["--set", "replicas=0"],
    ],
)
def test_schema_rejects_bad_values(helm_bin, bad):
    result = subprocess.run([helm_bin, "template", "x", str(CHART), *bad], capture_output=True, text=True)
    assert result.returncode != 0 and "values don't meet the specifications of the schema" in result.stderr, (
        result.stderr
    )


def test_schema_is_strict_and_covers_every_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    open_objects = {"affinity"}  # passed through to the pod spec as Kubernetes defines it

    def walk(node, value, path):
        if node.get("type") == "object" and path not in open_objects:
            assert "additionalProperties" in node, f"{path or 'the root'} must set additionalProperties"
        if isinstance(value, dict) and "properties" in node:
            assert set(value) <= set(node["properties"]), f"{path}: values.yaml keys missing from the schema"
            for key, sub in value.items():
                walk(node["properties"][key], sub, f"{path}.{key}".lstrip("."))
        for key, sub in node.get("properties", {}).items():
            if key not in (value or {}):
                walk(sub, None, f"{path}.{key}".lstrip("."))

    walk(schema, values, "")
    assert set(schema["properties"]) == set(values)


def test_every_value_is_documented():
    """The comment right above each value names it (`# image.tag ...`), as the Helm best practices ask.
    Checked: top-level values and the keys of the groups (image, namespace, ...); resources is one value."""
    block, parents, missing = [], [], []
    for line in (CHART / "values.yaml").read_text().splitlines():
        if line.lstrip().startswith("#"):
            block.append(line.strip())
            continue
        match = re.match(r"^( *)([A-Za-z][\w./-]*):(.*)$", line)
        if not match:
            block = []
            continue
        depth = len(match.group(1)) // 2
        parents = [*parents[:depth], match.group(2)]
        is_group = depth == 0 and not match.group(3).strip() and match.group(2) != "resources"
        checked = (depth == 0 and not is_group) or (depth == 1 and parents[0] != "resources")
        if checked and not any(comment.startswith("# " + ".".join(parents)) for comment in block):
            missing.append(".".join(parents))
        block = []
    assert not missing, f"values without a comment naming them: {missing}"


@pytest.mark.cluster
def test_helm_install_makes_an_available_operator(cluster, kubectl, namespace, helm_bin, mlmodel_crd, tmp_path):
    """A release next to the kustomize install: its own operator namespace (created by the chart) and
    release-named cluster-scoped objects. The CRD is installed once per session (mlmodel_crd), so Helm
    finds it and skips its crds/ (Helm never deletes CRDs anyway)."""
    release = f"pkg-{uuid.uuid4().hex[:6]}"
    operator_namespace = f"{release}-system"
    helm = [helm_bin, "--kubeconfig", cluster.kubeconfig]
    try:
        # the shipped image is not on the real node: the operator pod runs on the kwok node here
        placement = tmp_path / "kwok-placement.json"
        placement.write_text(
            json.dumps({"nodeSelector": localcluster.KWOK_NODE_SELECTOR, "tolerations": [localcluster.KWOK_TOLERATION]})
        )
        run(
            *helm,
            "install",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "-f",
            str(placement),
            "--set",
            "namespace.create=true",
            "--set",
            f"namespace.name={operator_namespace}",
            "--wait",
            "--timeout",
            "120s",
        )
        kubectl("wait", "--for=condition=Established", "crd/mlmodels.serving.mlops.dev", "--timeout=60s")
        name = f"{release}-mlmodel-operator"
        wait_for(
            lambda: deployment_available(kubectl, operator_namespace, name, replicas=2),
            60,
            "the Helm-installed operator Deployment to have availableReplicas == 2",
        )
        assert (
            kubectl("get", "clusterrole", name, "-o", "name").stdout.strip()
            == f"clusterrole.rbac.authorization.k8s.io/{name}"
        )
        status = json.loads(run(*helm, "status", release, "--namespace", namespace, "-o", "json"))
        assert status["info"]["status"] == "deployed"
    finally:
        subprocess.run(
            [*helm, "uninstall", release, "--namespace", namespace, "--wait", "--timeout", "60s"],
            capture_output=True,
            text=True,
        )
        kubectl("delete", "namespace", operator_namespace, "--ignore-not-found", "--wait=false", check=False)
    assert kubectl("get", "clusterrole", f"{release}-mlmodel-operator", check=False).returncode != 0


def test_namespaced_rbac_grants_writes_only_in_the_watched_namespaces(helm_bin):
    shipped = yaml.safe_load((REPO / "deploy" / "rbac" / "cluster_role.yaml").read_text())["rules"]
    discovery = [rule for rule in shipped if set(rule["resources"]) & {"namespaces", "customresourcedefinitions"}]
    docs = template(helm_bin, "--set", "rbac.namespaced=true", "--set", "watchNamespaces={models,staging}")
    assert one(docs, "ClusterRole")["rules"] == discovery
    roles = {
        doc["metadata"]["namespace"]: doc
        for doc in docs
        if doc["kind"] == "Role" and not doc["metadata"]["name"].endswith("-leader-election")
    }
    assert sorted(roles) == ["models", "staging"]
    assert all(role["rules"] == [rule for rule in shipped if rule not in discovery] for role in roles.values())
    bindings = [
        doc for doc in docs if doc["kind"] == "RoleBinding" and not doc["metadata"]["name"].endswith("-leader-election")
    ]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["models", "staging"]
    assert all(b["subjects"][0]["namespace"] == "mlmodel-system" for b in bindings)
    for bad, message in (
        (["--set", "rbac.namespaced=true"], "rbac.namespaced needs watchNamespaces"),
        (["--set", "rbac.namespaced=true", "--set", "watchNamespaces={team-*}"], "not the glob"),
    ):
        result = subprocess.run([helm_bin, "template", "x", str(CHART), *bad], capture_output=True, text=True)
        assert result.returncode != 0 and message in result.stderr, result.stderr


def test_an_image_digest_pins_both_images(helm_bin):
    digest = "sha256:" + "ab" * 32
    docs = template(helm_bin, "--set", f"image.digest={digest}", "--set", f"serverImage.digest={digest}")
    container = operator_container(docs)
    assert container["image"] == f"ghcr.io/mlmodel-operator/mlmodel-operator@{digest}"
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MLMODEL_OPERATOR_DEFAULT_IMAGE"] == f"ghcr.io/mlmodel-operator/mlmodel-server@{digest}"
    result = subprocess.run(
        [helm_bin, "template", "x", str(CHART), "--set", "image.digest=latest"], capture_output=True, text=True
    )
    assert result.returncode != 0


def test_the_release_namespace_hook_is_off_by_default_and_restricted(helm_bin):
    assert not [doc for doc in template(helm_bin) if doc["kind"] == "Job"]
    docs = template(helm_bin, "--set", "namespace.labelReleaseNamespace=true")
    job = one(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "python",
        "-m",
        "mlmodel_operator.namespace_labels",
        "mlmodel-system",
        "pod-security.kubernetes.io/enforce=restricted",
    ]
    assert_restricted(job["spec"]["template"]["spec"], container)
    hook_role = next(
        doc for doc in docs if doc["kind"] == "ClusterRole" and doc["metadata"]["name"].endswith("-namespace-labels")
    )
    assert hook_role["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["mlmodel-system"], "verbs": ["get", "patch"]}
    ]
    assert not [
        doc
        for doc in template(
            helm_bin,
            "--set",
            "namespace.labelReleaseNamespace=true",
            "--set",
            "namespace.create=true",
            "--set",
            "namespace.name=other",
        )
        if doc["kind"] == "Job"
    ]


@pytest.mark.cluster
def test_the_hooks_command_labels_the_release_namespace_with_only_its_rights(
    cluster, kubectl, namespace, helm_bin, tmp_path
):
    """What the hook Job runs (`helm install --create-namespace` made the namespace without labels), run here as a
    ServiceAccount holding exactly the hook's rules."""
    import operator_env

    docs = documents(
        run(
            helm_bin,
            "template",
            "x",
            str(CHART),
            "--namespace",
            namespace,
            "--set",
            "namespace.labelReleaseNamespace=true",
        )
    )
    job = one(docs, "Job")
    rbac = [
        doc
        for doc in docs
        if doc["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
        and doc["metadata"]["name"].endswith("-namespace-labels")
    ]
    for doc in rbac:
        doc["metadata"].pop("annotations", None)
        if doc["kind"] != "ServiceAccount":
            doc["metadata"]["name"] += f"-{namespace}"[-20:]
    role, binding = (next(d for d in rbac if d["kind"] == kind) for kind in ("ClusterRole", "ClusterRoleBinding"))
    binding["roleRef"]["name"] = role["metadata"]["name"]
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}))
    try:
        account = job["spec"]["template"]["spec"]["serviceAccountName"]
        kubeconfig = operator_env.write_operator_kubeconfig(
            cluster, tmp_path / "hook.kubeconfig", service_account=account, namespace=namespace
        )
        command = job["spec"]["template"]["spec"]["containers"][0]["command"]
        import os
        import sys

        result = subprocess.run(
            [sys.executable, *command[1:]],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        labels = json.loads(kubectl("get", "namespace", namespace, "-o", "json").stdout)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        other = subprocess.run(
            [sys.executable, "-m", "mlmodel_operator.namespace_labels", "default", "a=b"],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 1 and "403" in other.stderr, "the hook may label its own namespace only"
    finally:
        kubectl("delete", "clusterrolebinding", binding["metadata"]["name"], "--ignore-not-found", check=False)
        kubectl("delete", "clusterrole", role["metadata"]["name"], "--ignore-not-found", check=False)
