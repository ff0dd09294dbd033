"""@task declarations, payload validation and the registry built from modules."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from tests import sample_tasks
from worker import JobContext, RetryPolicy, task
from worker.errors import InvalidPayload, TaskDefinitionError, UnknownTaskError
from worker.taskdef.registry import TaskRegistry


class In(BaseModel):
    n: int


def test_decorator_records_models_and_policies() -> None:
    @task(name="double", timeout_s=3, max_tries=2, concurrency=4, result_ttl_s=60)
    async def double(ctx: JobContext, payload: In) -> In:
        return In(n=payload.n * 2)

    assert double.name == "double"
    assert double.payload_model is In
    assert double.result_model is In
    assert (double.timeout_s, double.max_tries, double.concurrency, double.result_ttl_s) == (3, 2, 4, 60)


def test_bare_decorator_uses_the_function_name() -> None:
    @task
    async def plain(ctx: JobContext, payload: In) -> int:
        return payload.n

    assert plain.name == "plain"
    assert plain.result_model is None


def test_sync_functions_are_refused() -> None:
    with pytest.raises(TaskDefinitionError, match="async def"):

        @task  # type: ignore[arg-type]
        def not_async(ctx: JobContext, payload: In) -> None:
            return None


def test_payload_must_be_a_pydantic_model() -> None:
    with pytest.raises(TaskDefinitionError, match="pydantic model"):

        @task  # type: ignore[type-var]
        async def untyped(ctx: JobContext, payload: dict) -> None:  # type: ignore[type-arg]
            return None


def test_signature_must_be_ctx_and_payload() -> None:
    with pytest.raises(TaskDefinitionError, match=r"exactly \(ctx, payload\)"):

        @task  # type: ignore[arg-type]
        async def three(ctx: JobContext, payload: In, extra: int) -> None:
            return None


@pytest.mark.parametrize("kwargs", [{"timeout_s": 0}, {"concurrency": 0}, {"max_tries": 0}, {"result_ttl_s": -1}])
def test_bad_policy_values_are_refused_at_import(kwargs: dict[str, float]) -> None:
    with pytest.raises(TaskDefinitionError):

        @task(**kwargs)  # type: ignore[call-overload]
        async def t(ctx: JobContext, payload: In) -> None:
            return None


def test_validation_error_names_each_field() -> None:
    with pytest.raises(InvalidPayload) as info:
        sample_tasks.add.validate({"a": "x", "b": -1})
    assert info.value.fields == ["a", "b"]
    assert "invalid payload for task 'add'" in str(info.value)


def test_wrong_model_instance_is_refused() -> None:
    with pytest.raises(InvalidPayload, match="expected AddIn, got In"):
        sample_tasks.add.validate(In(n=1))


def test_payload_from_call_accepts_one_object_or_keywords() -> None:
    assert sample_tasks.add.payload_from_call(({"a": 1, "b": 2},), {}).a == 1
    assert sample_tasks.add.payload_from_call((), {"a": 1, "b": 2}).b == 2
    with pytest.raises(InvalidPayload, match="one positional payload"):
        sample_tasks.add.payload_from_call((1, 2), {})


def test_task_max_tries_overrides_the_default_policy() -> None:
    default = RetryPolicy(max_tries=5, backoff_base_s=2)
    assert sample_tasks.slow.retry_policy(default) == RetryPolicy(max_tries=1, backoff_base_s=2)
    assert sample_tasks.flaky.retry_policy(default).max_tries == 3
    assert sample_tasks.add.retry_policy(default) == default


def test_registry_loads_packages_with_their_submodules() -> None:
    registry = TaskRegistry.from_modules(["tasks"])
    assert {"ping", "sleep", "fail", "word_stats"} <= set(registry.names())


def test_unknown_task_error_lists_the_known_ones() -> None:
    registry = TaskRegistry.from_modules(["tests.sample_tasks"])
    with pytest.raises(UnknownTaskError) as info:
        registry.get("ad")
    assert "'ad'" in str(info.value)
    assert "add" in str(info.value)


def test_duplicate_task_names_are_refused() -> None:
    @task(name="add")
    async def other_add(ctx: JobContext, payload: In) -> None:
        return None

    registry = TaskRegistry([sample_tasks.add])
    with pytest.raises(TaskDefinitionError, match="two tasks are named 'add'"):
        registry.add(other_add)


def test_missing_module_names_the_setting() -> None:
    with pytest.raises(TaskDefinitionError, match="JOBQ_TASK_MODULES"):
        TaskRegistry.from_modules(["no_such_module_here"])


def test_module_without_tasks_is_an_error() -> None:
    with pytest.raises(TaskDefinitionError, match="no tasks found"):
        TaskRegistry.from_modules(["json"])
