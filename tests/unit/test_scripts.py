"""Every Lua script: its file has a header naming its KEYS and ARGV, touches only keys from KEYS (or the prefixes
its header declares), and answers its table of cases (tests/script_cases.py) on fakeredis."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

import pytest
from arq.connections import ArqRedis

from tests.script_cases import CASES, Case, check
from worker.protocol.scripts import SCRIPT_NAMES, ScriptCall, Scripts, include_source, source

LUA = files("worker.protocol").joinpath("lua")
FILES = sorted(p.name.removesuffix(".lua") for p in LUA.iterdir() if p.name.endswith(".lua"))
INCLUDES = sorted(p.name.removesuffix(".lua") for p in LUA.joinpath("includes").iterdir() if p.name.endswith(".lua"))
#: The scripts that build keys from ids with prefixes given in ARGV (their headers say why).
PREFIXED = {"claim", "enqueue", "enqueue_after", "enqueue_dedup", "finish_many", "workflow_activate", "workflow_stage"}
#: Further names the prefixed scripts build keys from (their headers say why): the queues of a workflow's first steps.
BUILT_FROM = {"workflow_activate": {"roots"}}
#: Commands whose first argument is no key.
KEYLESS = {"TIME", "PUBLISH"}

CALL = re.compile(r"redis\.p?call\(\s*'([A-Z]+)'\s*(?:,\s*([^,)]+))?")


def _body(text: str) -> str:
    """The script without its header and comments."""
    text = re.sub(r"^--\[\[.*?\]\]", "", text, count=1, flags=re.DOTALL)
    return re.sub(r"--[^\n]*", "", text)


def _header(text: str) -> str:
    found = re.match(r"--\[\[(.*?)\]\]", text, flags=re.DOTALL)
    assert found, "the file starts with a --[[ header ]]"
    return found.group(1)


def test_every_script_name_has_a_file_and_every_file_a_name() -> None:
    assert sorted(SCRIPT_NAMES) == FILES
    assert all(source(name) for name in SCRIPT_NAMES)


@pytest.mark.parametrize("name", FILES)
def test_each_script_has_a_header_naming_its_keys_argv_and_reply(name: str) -> None:
    text = LUA.joinpath(f"{name}.lua").read_text()
    header = _header(text)
    assert "Input:" in header
    assert "Output:" in header
    named = set(re.findall(r"^\s*((?:KEYS|ARGV)\[[^\]]+\])", header, flags=re.MULTILINE))
    used = {f"{kind}[{index}]" for kind, index in re.findall(r"\b(KEYS|ARGV)\[(\d+)\]", _body(text))}
    assert used <= named, f"{name}.lua uses {sorted(used - named)} without naming them in its header"
    # Inputs at fixed places are bound to named locals at the top, not read in the body.
    for line in _body(text).splitlines():
        if re.search(r"\b(KEYS|ARGV)\[\d+\]", line):
            assert line.startswith("local "), f"{name}.lua reads {line.strip()!r} outside a binding"
    if name in PREFIXED:
        assert "Keys built here:" in header


@pytest.mark.parametrize("name", INCLUDES)
def test_each_include_has_a_header_and_is_used(name: str) -> None:
    _header(include_source(name))
    assert any(f'--- @include "{name}"' in LUA.joinpath(f"{f}.lua").read_text() for f in FILES)


def _from_keys(body: str, seeds: set[str]) -> set[str]:
    """The names a script binds from ``seeds`` (KEYS, and the key prefixes of the scripts that take them),
    or from other such names: assignments whose right side reads them, and loops over them."""
    names = {"KEYS", *seeds}
    body = re.sub(r"\b(then|do|else)\b", "\\1\n", body)  # one statement per line
    assignments = re.findall(
        r"^[ \t]*(?:local[ \t]+)?([\w \t,\[\]#+.-]+?)[ \t]*=[ \t]*([^=\n][^\n]*)$", body, flags=re.MULTILINE
    )
    for _ in range(3):
        for left, right in assignments:
            right = re.sub(r"#\w+", "", right)  # a length is no key
            if any(re.search(rf"\b{re.escape(n)}\b", right) for n in names):
                names |= {re.match(r"\w+", part.strip()).group(0) for part in left.split(",") if part.strip()}  # type: ignore[union-attr]
    for loop_vars, table in re.findall(r"for\s+([\w\s,]+)\s+in\s+ipairs\((\w+)\)", body):
        if table in names:
            names |= {v.strip() for v in loop_vars.split(",")}
    return names


def _unbound_keys(body: str, prefixed: bool, built_from: frozenset[str] = frozenset()) -> list[str]:
    """The ``redis.call`` key arguments of ``body`` that are not bound from KEYS (or from declared prefixes)."""
    prefixes = {p for p in re.findall(r"\b(\w+_prefix)\b", body) if p != "token_prefix"} if prefixed else set()
    prefixes |= built_from
    allowed = _from_keys(body, prefixes)
    unbound = []
    for command, key in CALL.findall(body):
        if command in KEYLESS or not key:
            continue
        key = key.strip()
        root = re.match(r"(?:unpack\()?(\w+)", key)
        if not (root and (root.group(1) in allowed or key.startswith("KEYS["))):
            unbound.append(f"{command} {key}")
    return unbound


@pytest.mark.parametrize("name", FILES)
def test_every_key_a_script_touches_comes_from_keys(name: str) -> None:
    body = _body(LUA.joinpath(f"{name}.lua").read_text())
    assert _unbound_keys(body, name in PREFIXED, frozenset(BUILT_FROM.get(name, ()))) == []


def test_the_key_check_catches_keys_built_in_lua() -> None:
    body = (
        "local queue_key = KEYS[1]\nlocal id = ARGV[1]\n"
        "redis.call('ZADD', queue_key, 1, id)\nredis.call('DEL', 'arq:job:' .. id)\n"
    )
    assert _unbound_keys(body, False) == ["DEL 'arq:job:' .. id"]
    assert _unbound_keys("local k = ARGV[1]\nredis.call('GET', k)\n", False) == ["GET k"]


#: Keys an include reads from a record rather than from its parameters: a released job's queue (deps).
INCLUDE_READS = {"deps": {"queue_key"}}


@pytest.mark.parametrize("name", INCLUDES)
def test_includes_touch_only_the_keys_they_are_given(name: str) -> None:
    body = _body(include_source(name))
    params = {p.strip() for args in re.findall(r"local function \w+\(([^)]*)\)", body) for p in args.split(",")}
    params |= INCLUDE_READS.get(name, set())
    for command, key in CALL.findall(body):
        if command in KEYLESS:
            continue
        root = re.match(r"(?:unpack\()?(\w+)", key.strip())
        assert root, f"{name}.lua: {command} on {key!r}"
        assert root.group(1) in params, f"{name}.lua: {command} on {key!r}, not a parameter"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_script_cases_on_fakeredis(fake_redis: ArqRedis, case: Case) -> None:
    await check(fake_redis, case)


def test_every_script_has_cases() -> None:
    assert {c.script for c in CASES} == set(SCRIPT_NAMES)


async def test_the_registry_counts_and_intercepts_calls_per_connection(fake_redis: ArqRedis) -> None:
    scripts = Scripts.of(fake_redis)
    assert Scripts.of(fake_redis) is scripts
    assert scripts["release"] is scripts["release"]
    seen: list[tuple[Sequence[Any], Sequence[Any]]] = []

    async def spy(send: ScriptCall, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        seen.append((keys, args))
        return await send(keys, args)

    with scripts.intercept("release", spy) as release:
        assert await release(["arq:in-progress:x"], ["t"]) == 1
    assert await release(["arq:in-progress:x"], ["t"]) == 1
    assert (seen, release.calls) == ([(["arq:in-progress:x"], ["t"])], 2)


def test_includes_are_resolved_once_and_nothing_is_templated() -> None:
    claim = source("claim")
    assert "@include" not in claim
    assert claim.count("local function mget(") == 1
    assert claim.count("local function wrong_record(") == 1
    for name in SCRIPT_NAMES:
        assert not re.search(r"\{\{|\{[A-Za-z_]\w*\}", _body(source(name))), f"{name}.lua looks templated"
