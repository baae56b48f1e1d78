"""The GitHub Actions workflow (test, build and push both images, roll out) and the Docker-only make e2e-kind."""

from __future__ import annotations

import re
import shlex
import subprocess

import yaml
from packaging_support import REPO

WORKFLOW = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yaml").read_text())
JOBS = WORKFLOW["jobs"]
BASE_DEPLOYMENT = yaml.safe_load((REPO / "deploy" / "base" / "deployment.yaml").read_text())


def commands(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def uses(job: dict) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_test_job_runs_what_ci_runs():
    ci_run = (REPO / ".ci" / "run").read_text()
    make_line = next(line.strip() for line in ci_run.splitlines() if line.strip().startswith("make "))
    assert make_line in commands(JOBS["test"])
    makefile = (REPO / "Makefile").read_text()
    for line in commands(JOBS["test"]).splitlines():
        if line.strip().startswith("make "):
            target = shlex.split(line)[1]
            assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), (
                f"make {target} is not a Makefile target"
            )


def test_images_job_builds_and_pushes_both_dockerfiles():
    job = JOBS["images"]
    assert job["needs"] == "test" and job["permissions"]["packages"] == "write"
    matrix = job["strategy"]["matrix"]["include"]
    assert {entry["dockerfile"] for entry in matrix} == {"Dockerfile.operator", "Dockerfile.server"}
    for entry in matrix:
        assert (REPO / entry["dockerfile"]).is_file()
    assert "docker/build-push-action" in uses(job) and "docker/login-action" in uses(job)
    build = next(step for step in job["steps"] if step.get("uses", "").startswith("docker/build-push-action"))
    assert build["with"]["push"] is True and build["with"]["file"] == "${{ matrix.dockerfile }}"
    login = next(step for step in job["steps"] if step.get("uses", "").startswith("docker/login-action"))
    assert login["with"]["registry"] == "ghcr.io"


def test_rollout_sets_the_new_images_on_main_only():
    job = JOBS["rollout"]
    assert job["needs"] == "images"
    assert "refs/heads/main" in job["if"]
    script = commands(job)
    namespace = BASE_DEPLOYMENT["metadata"]["namespace"]
    name = BASE_DEPLOYMENT["metadata"]["name"]
    (container,) = BASE_DEPLOYMENT["spec"]["template"]["spec"]["containers"]
    assert f"kubectl -n {namespace} set image deployment/{name} {container['name']}=" in script
    assert "MLMODEL_OPERATOR_DEFAULT_IMAGE=" in script
    assert f"rollout status deployment/{name}" in script
    # Secrets reach the shell through the environment, never pasted into the script.
    assert "secrets." not in script


def test_e2e_kind_script_is_shellcheck_clean(shellcheck):
    result = subprocess.run([shellcheck, str(REPO / "hack" / "e2e-kind.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_e2e_kind_make_target_runs_the_script():
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", "deploy/e2e-kind.mk", "e2e-kind"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "hack/e2e-kind.sh" in result.stdout
    assert "not run" in (REPO / "deploy" / "e2e-kind.mk").read_text()


def test_e2e_kind_uses_the_dev_overlay_and_rewrites_the_iris_sample():
    script = (REPO / "hack" / "e2e-kind.sh").read_text()
    assert "deploy/overlays/dev" in script and (REPO / "deploy" / "overlays" / "dev" / "kustomization.yaml").is_file()
    sample = (REPO / "deploy" / "samples" / "iris.yaml").read_text()
    # The script's sed expressions must each hit exactly one line of the sample.
    for pattern in (r"^\s*uri: ", r"^\s*sha256: ", r"^\s*replicas: 3$"):
        assert len(re.findall(pattern, sample, re.MULTILINE)) == 1, pattern
    load_line = next(line for line in script.splitlines() if "load docker-image" in line)
    for image in ("mlmodel-operator:dev", "mlmodel-server:dev"):
        assert f"-t {image}" in script and image in load_line
