"""deploy/examples/project: a user's own project on jobq's image, and its compose and Kubernetes examples.

The Dockerfile is hadolint-clean and builds on jobq's image; the compose file is valid per the Compose
specification and runs the project's image; the kustomization renders (real kustomize) into valid objects that
run the project's image with its task modules; and the project's task module loads with ``jobq tasks``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml

from tests.deploy.dockerfile import entrypoint_argv, exec_form, stages
from tests.deploy.test_compose import validator
from tests.deploy.test_dockerfile import hadolint
from tests.deploy.test_k8s import KUBE_VERSIONS, _render, config, container, deployments

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "deploy" / "examples" / "project"
JOBQ = str(Path(sys.executable).parent / "jobq")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROJECT / "compose.yaml").read_text())
    return data


def rendered() -> list[dict[str, Any]]:
    return [obj for obj in yaml.safe_load_all(_render(str(PROJECT / "k8s"))) if obj]


def test_the_dockerfile_is_lint_clean_and_builds_on_jobqs_image(tmp_path: Path) -> None:
    assert hadolint(PROJECT / "Dockerfile", tmp_path) == []
    (stage,) = stages(PROJECT / "Dockerfile")
    assert stage.base == "${JOBQ_IMAGE}"
    assert stage.all("USER")[-1].value == "10001:10001", "the image runs unprivileged, as jobq's does"
    assert [i.value for i in stage.all("COPY")][-1] == "shop/ /app/shop/", "the code lands in jobq's WORKDIR /app"
    # jobq's image has ENTRYPOINT ["jobq"]: the project's image keeps it and gives the command's arguments.
    assert stage.last("ENTRYPOINT") is None
    cmd = stage.last("CMD")
    assert cmd is not None
    assert entrypoint_argv(ROOT / "deploy" / "Dockerfile")[0] == "jobq"
    assert exec_form(cmd) == ["worker", "shop.jobs"]


def test_the_compose_file_is_valid_and_runs_the_projects_image() -> None:
    data = compose()
    errors = list(validator().iter_errors(data))
    assert errors == [], [e.message for e in errors]
    services = data["services"]
    assert services["worker"]["build"]["context"] == "."
    assert services["api"]["image"] == services["worker"]["image"]
    assert services["api"]["command"] == ["api", "shop.jobs"]


def test_the_kustomization_runs_the_projects_image_with_its_task_modules() -> None:
    objects = rendered()
    for obj in objects:
        if not obj["apiVersion"].startswith("keda.sh/"):
            kubernetes_validate.validate(obj, KUBE_VERSIONS[-1], strict=True)
    images = {container(d)["image"] for d in deployments(objects)}
    assert images == {"registry.example.com/shop:1.0.0"}
    assert config(objects)["JOBQ_TASK_MODULES"] == "shop.jobs"


def test_the_projects_task_module_loads_from_its_folder_without_pythonpath() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBQ_", "PYTHONPATH"))}
    listed = subprocess.run(
        [JOBQ, "tasks", "shop.jobs"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert "charge" in listed.stdout
