"""The README stays true: set-up commands first, configuration table generated from the settings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from worker.settings import JobqSettings, env_name
from worker.settings_table import settings_table_markdown

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_opens_with_the_two_set_up_commands() -> None:
    head = "\n".join(README.splitlines()[:20])
    assert "make demo" in head
    assert "make test" in head


def test_configuration_table_matches_the_settings_class() -> None:
    assert settings_table_markdown() in README


def test_every_variable_in_the_readme_exists() -> None:
    known = {env_name(name) for name in JobqSettings.model_fields}
    mentioned = set(re.findall(r"\bJOBQ_[A-Z0-9_]*[A-Z0-9]\b", README))
    assert mentioned - known == set()


def test_python_examples_parse() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) >= 4
    for block in blocks:  # examples may await at top level, as in a notebook or an async REPL
        compile(block, "README.md", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_metrics_table_lists_exactly_the_exported_metrics() -> None:
    from worker.observability.metrics import Metrics

    exported = {m.name for m in Metrics().registry.collect()}
    section = README.split("### Metrics", 1)[1].split("\n### ", 1)[0]
    documented = {re.sub(r"_total$", "", name) for name in re.findall(r"^\| `(jobq_[a-z_]+)` \|", section, flags=re.M)}
    assert documented == exported


def test_every_api_route_is_in_the_readme() -> None:
    from worker.http.openapi import openapi_document
    from worker.taskdef.registry import TaskRegistry

    section = README.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    paths = {
        p.replace("{job_id}", "{id}").replace("{workflow_id}", "{id}")
        for p in openapi_document(TaskRegistry())["paths"]
        if p.startswith("/v1/")
    }
    assert len(paths) >= 10
    assert {p for p in paths if p not in section} == set()


def test_benchmark_table_is_the_last_runs() -> None:
    # `make bench` writes bench/RESULTS.md and copies its table into the README after this mark.
    results = (Path(__file__).resolve().parents[2] / "bench" / "RESULTS.md").read_text()
    mark = "<!-- bench table: copied from bench/RESULTS.md -->\n"
    assert mark in README
    shown = README.split(mark, 1)[1].split("\n\n", 1)[0]
    assert shown.startswith("| measurement |")
    assert shown in results
