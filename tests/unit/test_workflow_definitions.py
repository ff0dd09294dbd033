"""Workflow definitions (issue 17, not enqueueable yet): steps, chains, groups and chords are type-checked when
they are built, and a step that cannot take what comes before it is refused naming both steps."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from worker import JobContext, task
from worker.errors import InvalidPayload, TaskDefinitionError
from worker.taskdef.workflow import WorkflowDefinitionError, chain, check, chord, group, step


class Url(BaseModel):
    url: str


class Page(BaseModel):
    url: str
    size: int


class Summary(BaseModel):
    site: str
    pages: list[Page]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str


class Sized(BaseModel):
    size: float  # an int result fits a float field


@task
async def fetch(ctx: JobContext, payload: Url) -> Page:
    return Page(url=payload.url, size=1)


@task
async def summarize(ctx: JobContext, payload: Summary) -> int:
    return len(payload.pages)


@task
async def store(ctx: JobContext, payload: Page) -> Page:
    return payload


@task
async def strict(ctx: JobContext, payload: Strict) -> str:
    return payload.url


@task
async def sized(ctx: JobContext, payload: Sized) -> float:
    return payload.size


class Count(BaseModel):
    n: int
    label: str = ""


@task
async def report(ctx: JobContext, payload: Count) -> str:
    return ""


def test_a_result_that_fits_the_next_payload_flows_down_a_chain() -> None:
    built = chain(step(fetch, {"url": "https://a"}), step(store), step(sized))
    assert [s.task.name for s in built.nodes] == ["fetch", "store", "sized"]  # type: ignore[union-attr]
    check(built)


def test_a_chord_gives_its_callback_the_list_of_results_in_a_list_field() -> None:
    built = chord(
        group(step(fetch, {"url": u}) for u in ["https://a", "https://b"]), step(summarize, {"site": "s"}, into="pages")
    )
    check(built)
    assert len(built.header.nodes) == 2


def test_into_puts_a_plain_result_in_one_field() -> None:
    check(chain(step(summarize, {"site": "s", "pages": []}), step(report, {"label": "x"}, into="n")))


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda: chain(step(fetch, {"url": "u"}), step(summarize)), ["summarize", "fetch", "site"]),
        (lambda: chain(step(fetch, {"url": "u"}), step(strict)), ["strict", "extra", "size"]),
        (lambda: chain(step(summarize, {"site": "s", "pages": []}), step(store)), ["store", "int", "into"]),
        (lambda: chord([step(fetch, {"url": "u"})], step(store)), ["store", "group", "into"]),
        (lambda: chord([step(fetch, {"url": "u"})], step(report, {}, into="n")), ["report", "'n'", "list of Page"]),
        (lambda: chain(step(fetch, {"url": "u"}), step(report, {}, into="n")), ["report", "'n'", "Page"]),
    ],
)
def test_a_step_that_cannot_take_what_comes_before_it_is_refused_naming_both(build: object, names: list[str]) -> None:
    with pytest.raises(WorkflowDefinitionError) as raised:
        build()  # type: ignore[operator]
    for name in names:
        assert name in str(raised.value)
    assert isinstance(raised.value, TaskDefinitionError)


def test_a_whole_workflow_needs_payloads_where_nothing_comes_before() -> None:
    inner = chain(step(store), step(sized))  # nested later: its head's input is checked with the workflow
    with pytest.raises(WorkflowDefinitionError, match="step 'store' has no payload and nothing comes before it"):
        check(inner)
    check(chain(step(fetch, {"url": "u"}), inner))
    with pytest.raises(WorkflowDefinitionError, match="nothing comes before it"):
        check(step(report, {}, into="n"))


def test_bad_steps_are_refused_when_made() -> None:
    with pytest.raises(
        WorkflowDefinitionError, match=r"into='nope' is not a field of Summary \(its fields: site, pages\)"
    ):
        step(summarize, {"site": "s"}, into="nope")
    with pytest.raises(WorkflowDefinitionError, match=r"lacks the required fields \['site'\]"):
        step(summarize, {}, into="pages")
    with pytest.raises(InvalidPayload, match="url"):
        step(fetch, {"nope": 1})
    with pytest.raises(WorkflowDefinitionError, match="at least one"):
        chain()
    with pytest.raises(WorkflowDefinitionError, match="at least one"):
        group([])
