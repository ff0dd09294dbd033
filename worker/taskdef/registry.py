"""Typed tasks: the ``@task`` decorator and the registry built from the task modules.

A task is ``async def fn(ctx: JobContext, payload: SomeModel) -> Result``. The decorator returns a
:class:`TaskDef` that records the payload model and the task's policies; it registers nothing
globally. :meth:`TaskRegistry.from_modules` imports the modules named in ``JOBQ_TASK_MODULES`` and
collects the ``TaskDef`` objects it finds there.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from pydantic import BaseModel, ValidationError

from worker.deprecations import module_alias
from worker.errors import InvalidPayload, TaskDefinitionError, UnknownTaskError
from worker.policy import RetryPolicy
from worker.taskdef.dedup import DedupMode
from worker.taskdef.limits import Limit, RateLimit
from worker.taskdef.modules import import_modules
from worker.taskdef.task_options import check_task_options

if TYPE_CHECKING:
    from worker.taskdef.context import JobContext

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R")
TaskFunction = Callable[["JobContext", P], Awaitable[R]]


def validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """``(dotted field path, message)`` for each problem pydantic found."""
    return [(".".join(str(part) for part in err["loc"]) or "(payload)", err["msg"]) for err in exc.errors()]


@dataclass(frozen=True, eq=False)
class TaskDef(Generic[P, R]):
    """A registered task: the coroutine function, its payload model and its policies.

    Calling a ``TaskDef`` calls the function directly, which keeps tasks easy to unit-test.
    """

    name: str
    fn: TaskFunction[P, R] = field(repr=False)
    payload_model: type[P]
    result_model: type[BaseModel] | None = None
    timeout_s: float | None = None
    max_tries: int | None = None
    retry: RetryPolicy | None = None
    concurrency: int | None = None
    limit: Limit | None = None
    rate_limit: RateLimit | None = None  #: at most so many starts a second per key across the fleet
    result_ttl_s: float | None = None
    priority: int = 0  #: its jobs' priority within their queue unless an enqueue says otherwise (0 to 255)
    queue: str | None = None  #: the queue its jobs go to unless an enqueue names one (None: JOBQ_QUEUE_NAME)
    fair_by: str | None = None  #: the payload field whose value its jobs are served round-robin by
    dedup: DedupMode | None = None  #: how its jobs are deduplicated by key (worker.taskdef.dedup)

    def __call__(self, ctx: JobContext, payload: P) -> Awaitable[R]:
        return self.fn(ctx, payload)

    def validate(self, payload: Any, *, item: int | None = None) -> P:
        """The payload as the task's model, or :class:`InvalidPayload` naming each bad field."""
        if isinstance(payload, self.payload_model):
            return payload
        if isinstance(payload, BaseModel):
            raise InvalidPayload(
                self.name,
                [("(payload)", f"expected {self.payload_model.__name__}, got {type(payload).__name__}")],
                item=item,
            )
        try:
            return self.payload_model.model_validate(payload)
        except ValidationError as exc:
            raise InvalidPayload(self.name, validation_errors(exc), item=item) from None

    def payload_from_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> P:
        """The payload from arq's call: one positional object, or the keyword arguments as fields."""
        if len(args) == 1 and not kwargs:
            return self.validate(args[0])
        if not args:
            return self.validate(kwargs)
        raise InvalidPayload(
            self.name, [("(payload)", f"expected one positional payload object, got {len(args)} arguments")]
        )

    def step(self, payload: Any = None, *, into: str | None = None, **options: Any) -> Any:
        """A workflow step of this task (:func:`worker.step`): its payload, or the previous result (``into``: into
        that field of the given payload); ``options``: ``priority``, ``queue``, ``timeout_s``."""
        from worker.taskdef.workflow import step  # here: workflow.py imports this module

        return step(self, payload, into=into, **options)

    def retry_policy(self, default: RetryPolicy) -> RetryPolicy:
        """This task's retry policy: its own, else ``default``; ``max_tries`` on the task wins.

        The settings' ``give_up_on`` list (carried by ``default``) applies to every task.
        """
        return (self.retry or default).with_max_tries(self.max_tries).giving_up_on(default.give_up_on)

    def dump_result(self, value: Any) -> Any:
        """The JSON-ready form of what the task returned."""
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        return value

    def load_result(self, value: Any) -> Any:
        """What :meth:`dump_result` stored, as the task's declared result model when it has one."""
        if self.result_model is not None and isinstance(value, dict):
            return self.result_model.model_validate(value)
        return value


def _signature_models(fn: Callable[..., Any], name: str) -> tuple[type[BaseModel], type[BaseModel] | None]:
    if not inspect.iscoroutinefunction(fn):
        raise TaskDefinitionError(f"task {name!r} must be an 'async def' function")
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 2:
        raise TaskDefinitionError(
            f"task {name!r} must take exactly (ctx, payload), it takes ({', '.join(p.name for p in params)})"
        )
    try:
        hints = typing.get_type_hints(fn)
    except NameError as exc:
        raise TaskDefinitionError(f"task {name!r}: cannot resolve annotations ({exc})") from None
    payload_type = hints.get(params[1].name)
    if not (inspect.isclass(payload_type) and issubclass(payload_type, BaseModel)):
        raise TaskDefinitionError(
            f"task {name!r}: annotate the payload parameter {params[1].name!r} with a pydantic model, "
            "or pass payload=SomeModel to @task"
        )
    returned = hints.get("return")
    result_model = returned if inspect.isclass(returned) and issubclass(returned, BaseModel) else None
    return payload_type, result_model


@overload
def task(fn: TaskFunction[P, R], /) -> TaskDef[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    timeout_s: float | None = None,
    max_tries: int | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int | None = None,
    limit: Limit | None = None,
    rate_limit: RateLimit | None = None,
    result_ttl_s: float | None = None,
    priority: int = 0,
    queue: str | None = None,
    fair_by: str | None = None,
    dedup: DedupMode | None = None,
) -> Callable[[TaskFunction[P, R]], TaskDef[P, R]]: ...


def task(
    fn: TaskFunction[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    timeout_s: float | None = None,
    max_tries: int | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int | None = None,
    limit: Limit | None = None,
    rate_limit: RateLimit | None = None,
    result_ttl_s: float | None = None,
    priority: int = 0,
    queue: str | None = None,
    fair_by: str | None = None,
    dedup: DedupMode | None = None,
) -> TaskDef[P, R] | Callable[[TaskFunction[P, R]], TaskDef[P, R]]:
    """Declare a task: ``@task`` or ``@task(name=..., timeout_s=..., max_tries=..., ...)``.

    The payload model comes from the annotation of the second parameter; a pydantic model in the
    return annotation is used to rebuild results for producers. ``None`` means "use the settings
    default" for ``timeout_s``, ``max_tries``, ``retry`` and ``result_ttl_s``. ``concurrency``
    limits how many jobs of this task one worker process runs at once; ``limit`` (a
    :class:`~worker.taskdef.limits.Limit`) how many run at once across all workers, per key; ``rate_limit`` (a
    :class:`~worker.taskdef.limits.RateLimit`) how many start a second across all workers, per key (README,
    "Rate limits").
    ``priority`` (0, the default, to 255) is its jobs' priority within their queue: higher runs first.
    ``queue`` is the queue its jobs go to when an enqueue names none (``None``: ``JOBQ_QUEUE_NAME``).
    ``fair_by`` names a payload field: its due jobs are served round-robin by that field's value (README,
    "Fairness"), so one value's burst does not hold back the others.
    ``dedup`` (:class:`~worker.taskdef.dedup.UniqueFor`, ``Throttle`` or ``Debounce``) deduplicates its jobs by
    a key computed from the payload (README, "Deduplication").
    """

    def wrap(function: TaskFunction[P, R]) -> TaskDef[P, R]:
        task_name = name or function.__name__
        payload_model, result_model = _signature_models(function, task_name)
        check_task_options(
            task_name, payload_model, timeout_s=timeout_s, concurrency=concurrency, max_tries=max_tries,
            result_ttl_s=result_ttl_s, priority=priority, dedup=dedup, queue=queue, fair_by=fair_by,
            rate_limit=rate_limit,
        )  # fmt: skip
        return TaskDef(
            name=task_name,
            fn=function,
            payload_model=typing.cast(type[P], payload_model),
            result_model=result_model,
            timeout_s=timeout_s,
            max_tries=max_tries,
            retry=retry,
            concurrency=concurrency,
            limit=limit,
            rate_limit=rate_limit,
            result_ttl_s=result_ttl_s,
            priority=priority,
            queue=queue,
            fair_by=fair_by,
            dedup=dedup,
        )

    return wrap(fn) if fn is not None else wrap


class TaskRegistry:
    """The tasks a worker runs and a producer may enqueue, by name."""

    def __init__(self, tasks: Iterable[TaskDef[Any, Any]] = ()) -> None:
        self._tasks: dict[str, TaskDef[Any, Any]] = {}
        for t in tasks:
            self.add(t)

    def add(self, task_def: TaskDef[Any, Any], *, origin: str = "") -> None:
        """Register one task; a second, different task under the same name is an error."""
        existing = self._tasks.get(task_def.name)
        if existing is not None and existing is not task_def:
            raise TaskDefinitionError(
                f"two tasks are named {task_def.name!r} ({existing.fn.__module__} and "
                f"{origin or task_def.fn.__module__}); give one of them @task(name=...)"
            )
        self._tasks[task_def.name] = task_def

    def get(self, name: str) -> TaskDef[Any, Any]:
        """The task called ``name``, or :class:`UnknownTaskError` listing the known ones."""
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTaskError(name, list(self._tasks)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[TaskDef[Any, Any]]:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def names(self) -> list[str]:
        """The registered task names, sorted."""
        return sorted(self._tasks)

    def queues(self) -> list[str]:
        """The queues the tasks name as their default (``@task(queue=...)``), sorted."""
        return sorted({t.queue for t in self._tasks.values() if t.queue is not None})

    @classmethod
    def from_modules(cls, modules: Iterable[str]) -> TaskRegistry:
        """Import each module (and every submodule of a package) and collect its tasks."""
        registry = cls()
        for module in import_modules(modules):
            for value in vars(module).values():
                if isinstance(value, TaskDef):
                    registry.add(value, origin=module.__name__)
        if not registry:
            raise TaskDefinitionError(
                f"no tasks found in {', '.join(modules) or '(no modules)'}; set JOBQ_TASK_MODULES to the "
                "modules that define your @task functions"
            )
        return registry


if TYPE_CHECKING:
    # Type checkers accept the old name; at run time it warns.
    Registry = TaskRegistry
else:

    def __getattr__(name: str) -> Any:
        # Registry was renamed TaskRegistry; the old name works, with a DeprecationWarning, until jobq 0.3.
        return module_alias(__name__, {"Registry": "TaskRegistry"}, name, globals())
