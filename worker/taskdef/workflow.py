"""Workflow definitions: steps, chains, groups and chords, type-checked when they are built (issue 17).

This module describes a workflow and checks it; :meth:`worker.Client.enqueue_workflow` enqueues one (see
worker.client.workflows and docs/workflows-design.md).

- :func:`step` names a task and its payload. With no payload the step receives the previous result (a chain's
  previous node, a chord's group) as its payload; with ``into="field"`` the previous result goes into that
  field of the given (partial) payload.
- :func:`chain` runs its nodes one after the other, :func:`group` in parallel (its result is the list of its
  members' results, in order), :func:`chord` a group then one callback with that list.

:func:`check` (run by :func:`chain` and :func:`chord`) refuses, with :class:`WorkflowDefinitionError`, a step
whose payload cannot be built from what comes before it (each link when a chain or chord is built, the
whole workflow when it is checked at last): the previous result's type must be accepted by the
step's payload model, field by field, or by the ``into`` field. A task whose return type is not annotated is
not checked (its result is taken as ``Any``).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import NoneType, UnionType
from typing import Any, Union

from pydantic import BaseModel

from worker.errors import TaskDefinitionError
from worker.taskdef.registry import TaskDef

__all__ = [
    "Chain",
    "Chord",
    "Group",
    "Node",
    "Step",
    "StepOutcome",
    "WorkflowDefinitionError",
    "chain",
    "check",
    "chord",
    "group",
    "step",
]


class WorkflowDefinitionError(TaskDefinitionError, ValueError):
    """A workflow cannot run as built: the message names the steps (and the field) that do not fit."""


class StepOutcome(BaseModel):
    """What a step hands on in a workflow enqueued with ``on_failure="continue"``: whether it succeeded, and its
    value or its error (``{"type", "message", "traceback"}``)."""

    ok: bool
    value: Any = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True, eq=False)
class Step:
    """One task of a workflow: its payload, or (``payload`` ``None``) the previous result."""

    task: TaskDef[Any, Any]
    payload: BaseModel | dict[str, Any] | None = None
    into: str | None = None  #: the payload field the previous result goes into
    options: dict[str, Any] = field(default_factory=dict)  #: the enqueue's options (priority, queue, timeout_s)

    @property
    def label(self) -> str:
        """How messages name the step."""
        return f"step {self.task.name!r}"


@dataclass(frozen=True, eq=False)
class Chain:
    """Nodes run one after the other, each receiving the previous one's result."""

    nodes: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Group:
    """Nodes run in parallel; the group's result is the list of their results, in order."""

    nodes: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Chord:
    """A group, then one callback receiving the list of the group's results."""

    header: Group
    callback: Step


Node = Step | Chain | Group | Chord


def step(task: TaskDef[Any, Any], payload: BaseModel | dict[str, Any] | None = None, *, into: str | None = None,
         **options: Any) -> Step:  # fmt: skip
    """A step of ``task``. ``payload`` is validated now unless the step receives the previous result."""
    if into is not None:
        fields = task.payload_model.model_fields
        if into not in fields:
            raise WorkflowDefinitionError(
                f"step {task.name!r}: into={into!r} is not a field of {task.payload_model.__name__} "
                f"(its fields: {', '.join(fields) or 'none'})"
            )
        given = payload.model_dump() if isinstance(payload, BaseModel) else dict(payload or {})
        missing = [f for f, info in fields.items() if info.is_required() and f != into and f not in given]
        if missing:
            raise WorkflowDefinitionError(f"step {task.name!r}: the payload lacks the required fields {missing}")
        return Step(task, given, into, options)
    if payload is not None:
        payload = task.validate(payload)
    return Step(task, payload, None, options)


def chain(*nodes: Node) -> Chain:
    """``nodes`` one after the other; each link is checked now (what comes before the chain, when it is
    nested, is checked with the workflow: :func:`check`)."""
    if not nodes:
        raise WorkflowDefinitionError("a chain needs at least one step")
    built = Chain(tuple(nodes))
    _check_built(built)
    return built


def group(*nodes: Node | Iterable[Node]) -> Group:
    """``nodes`` in parallel (given one by one, or as one iterable)."""
    members: list[Node] = []
    for node in nodes:
        members.extend([node] if isinstance(node, Step | Chain | Group | Chord) else list(node))
    if not members:
        raise WorkflowDefinitionError("a group needs at least one member")
    return Group(tuple(members))


def chord(header: Group | Iterable[Node], callback: Step) -> Chord:
    """``header`` in parallel, then ``callback`` once with the list of its results; checked now."""
    built = Chord(header if isinstance(header, Group) else group(header), callback)
    _check_built(built)
    return built


def _check_built(built: Node) -> None:
    """The check as a chain or chord is built, not knowing yet whether its workflow continues past failures: it
    must fit one way (the enqueue checks the whole workflow the way it runs)."""
    try:
        _check(built, _OPEN)
    except WorkflowDefinitionError:
        try:
            _check(built, _OPEN, True)
        except WorkflowDefinitionError:
            pass
        else:
            return
        raise


# --- the check ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Results:
    """What a node hands on: one result's type, or (``members``) a group's list of them."""

    of: str  #: the node that produced it, for messages
    type: Any = Any
    members: tuple[_Results, ...] | None = None


#: What comes before a chain or chord checked as it is built: maybe something, of a type not known yet.
_OPEN = _Results("what comes before it")


def check(node: Node, *, outcomes: bool = False) -> None:
    """Check a whole workflow: every step can take what comes before it, and the first steps have payloads.

    ``outcomes``: the workflow continues past failures, so each step hands on a :class:`StepOutcome`."""
    _check(node, None, outcomes)


def _check(node: Node, before: _Results | None, outcomes: bool = False) -> _Results:
    """Check every step of ``node`` against ``before``; return what ``node`` hands on."""
    if isinstance(node, Step):
        _check_step(node, before)
        return _Results(node.label, StepOutcome if outcomes else _return_type(node.task))
    if isinstance(node, Chain):
        for member in node.nodes:
            before = _check(member, before, outcomes)
        assert before is not None
        return before
    if isinstance(node, Group):
        return _Results("a group", members=tuple(_check(member, before, outcomes) for member in node.nodes))
    return _check(node.callback, _check(node.header, before, outcomes), outcomes)


def _check_step(s: Step, before: _Results | None) -> None:
    model = s.task.payload_model
    if s.into is not None:
        if before is None:
            raise WorkflowDefinitionError(
                f"{s.label} takes the previous result into {s.into!r}, but nothing comes before it"
            )
        annotation = model.model_fields[s.into].annotation
        if not _accepts(annotation, before):
            raise WorkflowDefinitionError(
                f"{s.label}: its field {s.into!r} ({_shown(annotation)}) cannot take {before.of}'s result "
                f"({_shown_results(before)})"
            )
        return
    if s.payload is not None:
        return  # its own payload: it runs after what comes before, ignoring its result
    if before is None:
        raise WorkflowDefinitionError(f"{s.label} has no payload and nothing comes before it to give one")
    if before.members is not None:
        raise WorkflowDefinitionError(
            f"{s.label} receives a group's list of results: give it into='<a list field of "
            f"{model.__name__}>' and the rest of its payload"
        )
    problem = _model_takes(model, before.type)
    if problem:
        raise WorkflowDefinitionError(
            f"{s.label}: its payload {model.__name__} cannot be {before.of}'s result ({_shown(before.type)}): "
            f"{problem}; pass into='<field>' to put the result in one field"
        )


def _return_type(task: TaskDef[Any, Any]) -> Any:
    return _declared_return(task.fn)


@functools.lru_cache(maxsize=1024)
def _declared_return(fn: Callable[..., Any]) -> Any:
    """A task function's return annotation, resolved once per function (a 10,000-member group has one task)."""
    try:
        return typing.get_type_hints(fn).get("return", Any)
    except Exception:  # an annotation that does not resolve: the result is not checked
        return Any


def _model_takes(model: type[BaseModel], result: Any) -> str:
    """Why ``model`` cannot validate a result of type ``result`` ('' when it can)."""
    if result is Any or result is model:
        return ""
    if not (isinstance(result, type) and issubclass(result, BaseModel)):
        return f"{_shown(result)} is not a model"
    given = result.model_fields
    for name, info in model.model_fields.items():
        if name not in given:
            if info.is_required():
                return f"the result has no field {name!r}"
            continue
        if not _accepts(info.annotation, _Results("", given[name].annotation)):
            return f"field {name!r} is {_shown(info.annotation)}, the result's is {_shown(given[name].annotation)}"
    if model.model_config.get("extra") == "forbid" and (extra := sorted(set(given) - set(model.model_fields))):
        return f"it forbids extra fields and the result has {extra}"
    return ""


def _accepts(annotation: Any, given: _Results) -> bool:
    """Whether a field annotated ``annotation`` accepts ``given`` (a value's type, or a group's list)."""
    if annotation is Any:
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, UnionType):
        return any(_accepts(arg, given) for arg in args)
    if given.members is not None:
        if annotation is list or origin is list:
            item = args[0] if args else Any
            return all(_accepts(item, member) for member in given.members)
        return False
    value = given.type
    if value is Any or value == annotation:
        return True
    if typing.get_origin(value) in (Union, UnionType):
        return all(_accepts(annotation, _Results("", arg)) for arg in typing.get_args(value))
    if value is None or value is NoneType:
        return annotation is None or annotation is NoneType
    if isinstance(annotation, type) and isinstance(value, type):
        return issubclass(value, annotation) or (annotation is float and value is int)
    return False


def _shown(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _shown_results(given: _Results) -> str:
    if given.members is None:
        return _shown(given.type)
    kinds = sorted({_shown_results(m) for m in given.members})
    return f"a list of {' | '.join(kinds)}"
