"""deploy/compose.yaml and deploy/.env.example: valid per the Compose specification, and safe as shipped."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import check_jsonschema  # type: ignore[import-untyped]
import jsonschema
import pytest
import yaml

from tests.deploy.dockerfile import entrypoint_argv
from tests.deploy.settings_names import SECRETS, SETTINGS, parse_duration_s, shutdown_grace_s

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
SCHEMA = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def service(name: str) -> dict[str, Any]:
    svc: dict[str, Any] = compose()["services"][name]
    return svc


def validator() -> Any:
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def env_example_names() -> list[str]:
    return re.findall(r"^#\s*(JOBQ_\w+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE)


def test_compose_file_is_valid_per_the_compose_specification() -> None:
    errors = sorted(validator().iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert errors == [], "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_rejects_a_misspelt_key() -> None:
    bad = compose()
    bad["services"]["worker"]["stop_grace_periode"] = "35s"
    assert list(validator().iter_errors(bad))


def test_check_jsonschema_cli_agrees() -> None:
    cli = shutil.which("check-jsonschema", path=str(Path(check_jsonschema.__file__).parents[4] / "bin"))
    if cli is None:
        pytest.skip("check-jsonschema's script is not next to the package (the in-process check above ran)")
    proc = subprocess.run(
        [cli, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_redis_is_persistent_and_never_evicts() -> None:
    redis = service("redis")
    assert re.fullmatch(r"redis:7(\.\d+)*(-[a-z0-9]+)?", redis["image"]), "pin redis 7 by tag"
    command = " ".join(redis["command"]) if isinstance(redis["command"], list) else redis["command"]
    for flag in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert flag in command
    assert "ping" in " ".join(redis["healthcheck"]["test"])
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data"
    assert volume in compose()["volumes"], "a named volume, declared at the top level"
    assert "ports" not in redis


def test_workers_can_be_scaled() -> None:
    worker = service("worker")
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["command"] == ["worker"]


def test_worker_and_api_are_built_from_the_dockerfile() -> None:
    for name in ("worker", "api"):
        build = service(name)["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT
        assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert service("worker")["image"] == service("api")["image"]
    assert entrypoint_argv(DEPLOY / "Dockerfile")[0] == "jobq"  # so that `command: ["api"]` runs `jobq api`


def test_stop_grace_period_exceeds_the_shutdown_grace() -> None:
    worker = service("worker")
    grace_s = shutdown_grace_s(worker["environment"])
    stop_s = parse_duration_s(worker["stop_grace_period"])
    assert stop_s >= grace_s + 5, f"stop_grace_period {stop_s}s leaves no margin over JOBQ_SHUTDOWN_GRACE_S {grace_s}s"


def test_parse_duration() -> None:
    assert parse_duration_s("1m30s") == 90
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_s("35")


def test_services_wait_for_a_healthy_redis_and_harden_the_container() -> None:
    for name in ("worker", "api"):
        svc = service(name)
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        assert svc["read_only"] is True
        assert "/tmp" in svc["tmpfs"]
        assert svc["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in svc["security_opt"]


def test_worker_health_check_is_jobq_check() -> None:
    assert service("worker")["healthcheck"]["test"] == ["CMD", "jobq", "check"]


def test_api_listens_beyond_loopback_and_checks_livez() -> None:
    api = service("api")
    assert api["command"] == ["api"]
    env = api["environment"]
    assert env["JOBQ_API_HOST"] == "0.0.0.0"
    published = [str(p).rsplit(":", 1)[-1] for p in api["ports"]]
    assert published == [env["JOBQ_API_PORT"]]
    kind, *argv = api["healthcheck"]["test"]
    assert kind == "CMD"
    assert argv[:2] == ["python", "-c"]
    ast.parse(argv[2])  # the probe is valid Python
    assert f"127.0.0.1:{env['JOBQ_API_PORT']}/livez" in argv[2]


def test_secrets_come_from_the_env_file() -> None:
    for name in ("worker", "api"):
        svc = service(name)
        assert [entry["path"] for entry in svc["env_file"]] == [".env"]
        hardcoded = SECRETS & set(svc["environment"])
        assert not hardcoded, f"{name} sets secrets in compose.yaml: {hardcoded}"
        unknown = {k for k in svc["environment"] if k.startswith("JOBQ_")} - SETTINGS
        assert not unknown, f"not jobq settings: {unknown}"


def test_env_file_is_ignored_by_git_and_the_example_is_not() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False).returncode == 0

    assert ignored("deploy/.env")
    assert not ignored("deploy/.env.example")
    tracked = subprocess.run(["git", "ls-files", "deploy/.env"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert tracked.stdout == ""


def test_env_example_lists_only_real_settings_all_commented_out() -> None:
    names = env_example_names()
    assert names, "deploy/.env.example lists no variable"
    assert set(names) <= SETTINGS, f"not jobq settings: {set(names) - SETTINGS}"
    assert len(names) == len(set(names))
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), start=1):
        assert not line.strip() or line.startswith("#"), f"line {number} is not commented out: {line!r}"
    assert {"JOBQ_API_TOKEN", "JOBQ_SIGNING_KEY", "JOBQ_REDIS_PASSWORD"} <= set(names)


def test_every_interpolated_variable_is_documented_in_the_example() -> None:
    def strings(node: object) -> list[str]:
        if isinstance(node, dict):
            return [s for key, value in node.items() for s in [str(key), *strings(value)]]
        if isinstance(node, list):
            return [s for item in node for s in strings(item)]
        return [str(node)]

    text = "\n".join(strings(compose())).replace("$$", "")  # $$ is a literal $ for the container's shell
    interpolated = set(re.findall(r"\$\{(\w+)", text))
    assert interpolated, "compose.yaml reads JOBQ_REDIS_PASSWORD and JOBQ_LOG_FORMAT from deploy/.env"
    assert interpolated <= set(env_example_names())
