"""``jobq workflow``: the workflows enqueued (chains, groups, chords) — one drawn as a tree of its steps with
their states, or a list of the recent ones. ``--json`` prints what the HTTP API answers for the same."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli.common import cli_settings, fail, out_console, print_json, with_client
from worker.states import JobStatus

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree

    from worker.client.workflow_status import StepState, WorkflowStatus

app = typer.Typer(
    help="Workflows (chains, groups and chords of steps): show one's steps and their states, or list the recent "
    "ones. Steps are ordinary jobs: `jobq job status STEP_ID` shows one in full.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (as the HTTP API answers) instead of a tree/table.")]
#: A group with more members than this is drawn as the counts of its steps' states (``--full`` draws them all).
GROUP_SHOWN = 50
#: The members of a collapsed group still drawn: those that failed or were cancelled, at most this many.
TROUBLE_SHOWN = 10
#: How each step status is coloured.
STYLE = {
    JobStatus.SUCCEEDED: "green",
    JobStatus.IN_PROGRESS: "cyan",
    JobStatus.QUEUED: "yellow",
    JobStatus.DEFERRED: "yellow",
    JobStatus.WAITING: "yellow",
    JobStatus.RETRYING: "yellow",
    JobStatus.BLOCKED: "dim",
    JobStatus.CANCELLED: "magenta",
    JobStatus.DEAD_LETTERED: "bold red",
    JobStatus.ABORTED: "red",
    JobStatus.FAILED: "red",
    JobStatus.NOT_FOUND: "dim",
}
_TROUBLE = frozenset({JobStatus.DEAD_LETTERED, JobStatus.ABORTED, JobStatus.FAILED, JobStatus.CANCELLED})
_STATE_STYLE = {"succeeded": "green", "running": "cyan", "failed": "bold red"}


def counts_line(counts: dict[JobStatus, int]) -> str:
    """``4 steps: 3 succeeded, 1 in_progress`` (the most common status first)."""
    total = sum(counts.values())
    parts = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].value)))
    return f"{total} step{'s' if total != 1 else ''}: {parts or 'none'}"


def _step_label(s: StepState) -> Text:
    from rich.text import Text

    label = Text.assemble((s.job_id, "bold"), "  ", s.task, "  ", (s.status.value, STYLE.get(s.status, "")))
    if s.cancelled_by:
        label.append(f" (by {s.cancelled_by})", style="dim")
    return label


def _leaves(node: dict[str, Any]) -> list[str]:
    if node.get("k") == "step":
        return [str(node.get("id"))]
    return [job_id for member in node.get("n", []) for job_id in _leaves(member)]


def _draw(parent: Tree, node: dict[str, Any], by_id: dict[str, StepState], full: bool) -> None:
    from rich.text import Text

    kind = node.get("k")
    if kind == "step":
        known = by_id.get(str(node.get("id")))
        if known is not None:
            parent.add(_step_label(known))
        return
    members = [m for m in node.get("n", []) if isinstance(m, dict)]
    if kind == "chord" and len(members) == 2:
        branch = parent.add(Text("chord", style="bold"))
        _draw(branch, members[0], by_id, full)
        callback = branch.add(Text("callback", style="dim"))
        _draw(callback, members[1], by_id, full)
        return
    title = f"{kind} of {len(members)}" if kind == "group" else str(kind)
    branch = parent.add(Text(title, style="bold"))
    if kind == "group" and len(members) > GROUP_SHOWN and not full:
        steps = [by_id[j] for j in _leaves(node) if j in by_id]
        branch.add(Text(counts_line(dict(Counter(s.status for s in steps))) + " (--full draws every member)"))
        for s in [s for s in steps if s.status in _TROUBLE][:TROUBLE_SHOWN]:
            branch.add(_step_label(s))
        return
    for member in members:
        _draw(branch, member, by_id, full)


def render_tree(status: WorkflowStatus, *, full: bool = False) -> Tree:
    """A workflow's tree of steps, each with its state (large groups as counts unless ``full``)."""
    from rich.text import Text
    from rich.tree import Tree

    root = Tree(
        Text.assemble(("workflow ", "bold"), (status.workflow_id, "bold"), "  ",
                      (status.state.value, _STATE_STYLE.get(status.state.value, ""))),
    )  # fmt: skip
    _draw(root, status.tree, {s.job_id: s for s in status.steps}, full)
    return root


@app.command()
def show(
    workflow_id: Annotated[
        str,
        typer.Argument(
            metavar="WORKFLOW_ID", help="The workflow's id (what enqueue_workflow or POST /v1/workflows gave)."
        ),
    ],
    full: Annotated[
        bool, typer.Option("--full", help=f"Draw every member of groups over {GROUP_SHOWN} members.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Draw a workflow's steps as a tree, each with its state; then count them by state.

    A group of more than 50 members is drawn as the counts of its members' states and the members that failed or
    were cancelled (--full draws them all). Exits 1 if the workflow is unknown, expired or was never fully
    enqueued."""
    from worker.client.workflow_status import WorkflowState

    settings = cli_settings()
    status: WorkflowStatus = with_client(settings, lambda client: client.workflow(workflow_id).status())
    if status.state is WorkflowState.NOT_FOUND:
        fail(f"no workflow {workflow_id!r}: unknown, expired, or its enqueue did not finish (see `jobq workflow list`)")
    if as_json:
        from worker.http.workflow_models import WorkflowOut

        print_json(WorkflowOut.of(status).model_dump(mode="json"))
        return
    console = out_console()
    console.print(render_tree(status, full=full))
    console.print(f"{counts_line(status.counts)}; on failure: {status.on_failure}", markup=False)


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Show at most this many, newest first.")] = 50,
    as_json: AsJson = False,
) -> None:
    """List the recent workflows, newest first: id, state, number of steps, when enqueued.

    The state is the one its record holds (running until its last steps end); `jobq workflow show ID` reads every
    step's."""
    from worker.http.workflow_models import WorkflowSummaryOut

    settings = cli_settings()
    found = with_client(settings, lambda client: client.workflows(limit))
    rows = [WorkflowSummaryOut.of(s) for s in found]
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    from rich.table import Table
    from rich.text import Text

    table = Table("id", "state", "steps", "created", title=f"{len(rows)} workflows")
    for r in rows:
        created = r.created_at.isoformat(timespec="seconds") if r.created_at else "-"
        table.add_row(Text(r.workflow_id), Text(r.state, style=_STATE_STYLE.get(r.state, "")), str(r.steps), created)
    out_console().print(table)
