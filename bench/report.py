"""The markdown table (medians, ratios, targets) and bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from bench.harness import ROOT, SYSTEMS
from bench.measure import Sample
from bench.methods import METHODS

#: measurement name -> system key -> one Sample per repetition
Results = dict[str, dict[str, list[Sample]]]


def median(results: Results, measurement: str, system: str, value: str) -> float | None:
    """The median over repetitions of one figure, or None when it was not measured."""
    samples = results.get(measurement, {}).get(system, [])
    values = [s.values[value] for s in samples if value in s.values]
    return statistics.median(values) if values else None


Figure = Callable[[str], float | None]  # system key -> median
Verdict = Callable[[Figure], bool | None]


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    measurement: str
    value: str
    title: str
    unit: str
    digits: int
    target: str
    verdict: Verdict | None


def _at_least(factor: float, other: str) -> Verdict:
    def check(fig: Figure) -> bool | None:
        mine, theirs = fig("jobq"), fig(other)
        return None if mine is None or theirs is None else mine >= factor * theirs

    return check


def _both(a: Verdict, b: Verdict) -> Verdict:
    def check(fig: Figure) -> bool | None:
        x, y = a(fig), b(fig)
        return None if x is None or y is None else x and y

    return check


def _at_most(limit: float) -> Verdict:
    def check(fig: Figure) -> bool | None:
        mine = fig("jobq")
        return None if mine is None else mine <= limit

    return check


def _between(low: float, high: float) -> Verdict:
    def check(fig: Figure) -> bool | None:
        mine = fig("jobq")
        return None if mine is None else low <= mine <= high

    return check


def _min_value(limit: float) -> Verdict:
    def check(fig: Figure) -> bool | None:
        mine = fig("jobq")
        return None if mine is None else mine >= limit

    return check


ROWS = [
    Row(
        "enqueue",
        "jobs_s",
        "enqueue, one await per job",
        "jobs/s",
        0,
        "≥ 2x arq and ≥ 1.3x SAQ",
        _both(_at_least(2, "arq"), _at_least(1.3, "saq")),
    ),
    Row(
        "batch",
        "jobs_s",
        "batch enqueue: jobq `enqueue_many`; arq: gather of `enqueue_job`, 100 at a time",
        "jobs/s",
        0,
        "≥ 50,000/s",
        _min_value(50_000),
    ),
    Row(
        "drain1",
        "jobs_s",
        "no-op drain, 1 worker process",
        "jobs/s",
        0,
        "≥ 1.5x arq tuned and ≥ 10x arq",
        _both(_at_least(1.5, "arq_tuned"), _at_least(10, "arq")),
    ),
    Row("drain2", "jobs_s", "no-op drain, 2 worker processes", "jobs/s", 0, "≥ 1.5x jobq 1 process", None),
    Row(
        "io",
        "wall_s",
        "I/O-bound: 2,000 x sleep(0.1 s) at concurrency 200 (ideal 1 s)",
        "s",
        2,
        "≤ 1.1 s",
        _at_most(1.1),
    ),
    Row("io", "efficiency_pct", "I/O-bound efficiency (ideal 1 s / wall time)", "%", 0, "≥ 90 %", _min_value(90)),
    Row("pickup", "p50_ms", "pickup latency p50, idle worker, jobs 20 ms apart", "ms", 2, "≤ 1 ms", _at_most(1)),
    Row("pickup", "p95_ms", "pickup latency p95", "ms", 2, "—", None),
    Row("pickup", "p99_ms", "pickup latency p99", "ms", 2, "≤ 5 ms", _at_most(5)),
    Row("commands", "per_job", "Redis commands per job (enqueue + run + finish)", "", 1, "≤ 6", _at_most(6)),
    Row(
        "drain1",
        "cmds_per_job",
        "Redis commands per job, pre-filled drain (batch enqueue + 1 process)",
        "",
        1,
        "— (informative)",
        None,
    ),
    Row("idle", "cmds_s", "Redis commands/s, 4 idle worker processes", "/s", 1, "reported (no threshold)", None),
    Row("drain1", "rss_mb", "worker peak RSS (VmHWM after the 1-process drain)", "MB", 1, "≤ 40 MB", _at_most(40)),
    *(
        Row(
            "fleet",
            f"k{k}_cmds",
            f"fleet, {k} idle workers: Redis commands per trickled job",
            "",
            1,
            "≤ 8",
            _at_most(8),
        )
        for k in (1, 4, 16, 64)
    ),
    Row("fleet", "k64_evalsha", "fleet, 64 idle workers: EVALSHA per trickled job", "", 1, "—", None),
    Row("fleet", "k1_p50_ms", "fleet, 1 idle worker: pickup p50, jobs 10 ms apart", "ms", 2, "≤ 0.8 ms", _at_most(0.8)),
    Row("fleet", "k1_p99_ms", "fleet, 1 idle worker: pickup p99", "ms", 2, "≤ 1.5 ms", _at_most(1.5)),
    Row(
        "fleet",
        "k1_after_quiet_ms",
        "fleet, 1 idle worker: pickup of the first job after 2 s of quiet",
        "ms",
        2,
        "≤ 2 ms",
        _at_most(2.0),
    ),
    Row("fleet", "k64_p50_ms", "fleet, 64 idle workers: pickup p50", "ms", 2, "≤ 1.2 ms", _at_most(1.2)),
    Row("fleet", "k64_p99_ms", "fleet, 64 idle workers: pickup p99", "ms", 2, "—", None),
    Row(
        "fleet",
        "k64_idle_per_worker_s",
        "fleet, 64 idle workers: Redis commands/s per idle worker",
        "/s",
        2,
        "≤ 1 /s",
        _at_most(1),
    ),
    Row(
        "startup",
        "version_ms",
        "`--version` of the command line (jobq, arq), wall time",
        "ms",
        0,
        "≤ 500 ms",
        _at_most(500),
    ),
    Row("startup", "help_ms", "`--help` of the command line, wall time", "ms", 0, "≤ 500 ms", _at_most(500)),
    Row(
        "startup",
        "ready_ms",
        "a worker process from exec to ready (jobq: its first heartbeat; arq: its start-up hook)",
        "ms",
        0,
        "≤ 1,000 ms",
        _at_most(1000),
    ),
    Row(
        "imports",
        "task_ms",
        "a task module's import, fresh interpreter: jobq `from worker import task`, arq `import arq`",
        "ms",
        0,
        "reported (no threshold)",
        None,
    ),
    Row("imports", "task_rss_mb", "peak RSS of that interpreter", "MB", 1, "reported (no threshold)", None),
    Row(
        "imports",
        "all_ms",
        "jobq, every public name of `worker` (what an eager `__init__` would load on any import)",
        "ms",
        0,
        "informative: above the lazy import",
        None,
    ),
    Row("imports", "all_rss_mb", "peak RSS of that interpreter", "MB", 1, "informative", None),
    Row(
        "flow",
        "priority_lows",
        "priority: low jobs started after 20 priority-9 jobs were enqueued behind 10,000, before the last of them",
        "",
        0,
        "< 200",
        _at_most(199),
    ),
    Row(
        "flow",
        "strict_lows",
        "strict queues (`a,b`): jobs of b started after 20 were enqueued on a, b holding every slot, before a's last",
        "",
        0,
        "— (never starved)",
        None,
    ),
    *(
        Row(
            "flow",
            f"weighted_share_{w}",
            f"weighted queues 5:3:1, all saturated, 30 s: share of the weight-{w} queue's starts",
            "%",
            1,
            f"{100 * w / 9:.1f} % ± 10 %",
            _between(100 * w / 9 * 0.9, 100 * w / 9 * 1.1),
        )
        for w in (5, 3, 1)
    ),
    Row(
        "flow",
        "weighted_worst_pct",
        "weighted queues: the worst share's deviation from its weight",
        "%",
        1,
        "≤ 10 %",
        _at_most(10),
    ),
    Row(
        "flow",
        "fair_a_jobs",
        "fairness (`fair_by`), 2 workers: A's jobs started while B's 20 did, A having 20,000 queued before them",
        "",
        0,
        "≤ about 40",
        _at_most(40),
    ),
    Row(
        "flow",
        "unfair_b_jobs",
        "without `fair_by`: B's jobs started while 2,000 of A's did",
        "",
        0,
        "— (control)",
        None,
    ),
    Row("flow", "uncapped_cmds", "60 jobs of 0.1 s, 1 worker: Redis commands per job", "", 1, "— (baseline)", None),
    Row(
        "flow",
        "capped_cmds",
        "the same with `concurrency=4` (the claim parks each in place while it waits for a slot): Redis commands"
        " per job",
        "",
        1,
        "—",
        None,
    ),
    Row(
        "flow",
        "parked_ratio",
        "waiting for a slot: commands per job / the unlimited job's",
        "x",
        2,
        "≤ 2x",
        _at_most(2),
    ),
    Row("flow", "idle_cmds_s", "one idle worker on an empty queue: Redis commands/s", "/s", 2, "— (baseline)", None),
    Row(
        "flow",
        "paused_cmds_s",
        "one idle worker on a paused queue holding 100 jobs: Redis commands/s",
        "/s",
        2,
        "≤ the idle worker's",
        None,
    ),
    Row(
        "rate",
        "rate_per_s",
        "rate limit 50/s (burst 5) on one key, 4 workers, 20 s backlog: starts/s",
        "/s",
        2,
        "50 ± 10 %",
        _between(45, 55),
    ),
    Row("rate", "max_in_1s", "rate limit: most starts in any 1 s window", "", 0, "≤ per_s + burst (55)", _at_most(55)),
    Row(
        "rate", "unlimited_cmds", "the same jobs without the limit: Redis commands per job", "", 1, "— (baseline)", None
    ),
    Row(
        "rate",
        "limited_cmds",
        "rate-limited jobs (the claim parks each in place until a turn is near): Redis commands per job",
        "",
        1,
        "—",
        None,
    ),
    Row(
        "rate",
        "limited_ratio",
        "rate limit: commands per job / the unlimited job's",
        "x",
        2,
        "≤ 2x",
        _at_most(2),
    ),
    Row(
        "rate",
        "keyed_ratio",
        "the same backlog under a keyed limit (`key=lambda p: p.run`, one key): commands per job / the unlimited job's",
        "x",
        2,
        "≤ 2x",
        _at_most(2),
    ),
    Row(
        "rate",
        "keyed_max_in_1s",
        "keyed limit: most starts in any 1 s window",
        "",
        0,
        "≤ per_s + burst (55)",
        _at_most(55),
    ),
    Row(
        "rate",
        "trickle_ratio",
        "rate limit, jobs arriving one by one at 60/s (each waits under 1 s, held in its worker): commands per job"
        " / the unlimited job's",
        "x",
        2,
        "≤ 2x",
        _at_most(2),
    ),
    Row("rate", "trickle_max_in_1s", "that trickle: most starts in any 1 s window", "", 0, "≤ 55", _at_most(55)),
    Row(
        "workflows",
        "chord_s",
        "chord of 10,000 no-op members, 2 worker processes: from building it to the callback's end",
        "s",
        2,
        "—",
        None,
    ),
    Row(
        "workflows",
        "plain_s",
        "the same 10,000 as plain jobs (`enqueue_many`), 2 worker processes: from building them to the last end",
        "s",
        2,
        "— (baseline)",
        None,
    ),
    Row(
        "workflows",
        "time_ratio",
        "chord: time to the callback / time to drain the plain jobs",
        "x",
        2,
        "≤ 1.3x",
        _at_most(1.3),
    ),
    Row(
        "workflows",
        "running_ratio",
        "the same from the first start (the enqueue left out): chord / plain jobs",
        "x",
        2,
        "— (informative)",
        None,
    ),
    Row(
        "workflows",
        "member_cmds",
        "chord: Redis commands per member (its enqueue, run and fan-in; the callback and its read included)",
        "",
        1,
        "—",
        None,
    ),
    Row("workflows", "plain_cmds", "plain jobs: Redis commands per job", "", 1, "— (baseline)", None),
    Row("workflows", "cmds_ratio", "chord: commands per member / per plain job", "x", 2, "≤ 2x", _at_most(2)),
]


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    r = a / b
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.3f}x"


def _verdict(row: Row, fig: Figure, results: Results) -> str:
    if row.measurement == "drain2":
        two, one = fig("jobq"), median(results, "drain1", "jobq", "jobs_s")
        ok = None if two is None or one is None else two >= 1.5 * one
    else:
        ok = row.verdict(fig) if row.verdict else None
    if row.verdict is None and row.measurement != "drain2":
        return ""
    return "not measured" if ok is None else ("met" if ok else "**not met**")


def table(results: Results) -> str:
    """The markdown table of medians, ratios and targets (rows not measured are left out)."""
    head = ["measurement", *(s.label for s in SYSTEMS), "jobq / arq", "jobq / arq tuned", "target", "met?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in ROWS:
        if row.measurement not in results:
            continue

        def fig(system: str, row: Row = row) -> float | None:
            return median(results, row.measurement, system, row.value)

        unit = f" ({row.unit})" if row.unit else ""
        cells = [row.title + unit, *(_fmt(fig(s.key), row.digits) for s in SYSTEMS)]
        cells += [_ratio(fig("jobq"), fig("arq")), _ratio(fig("jobq"), fig("arq_tuned"))]
        cells += [row.target, _verdict(row, fig, results)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def revision() -> str:
    """The commit measured (``-dirty`` when the tree has uncommitted changes)."""
    out = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    return out.stdout.strip() or "unknown"


def machine() -> str:
    """Cores, CPU, Python, redis-server and library versions."""
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
    binary = shutil.which("redis-server") or "redis-server"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    redis_version = re.search(r"v=(\S+)", out)
    libs = ", ".join(f"{name} {version(name)}" for name in ("arq", "redis", "hiredis", "uvloop", "saq"))
    return (
        f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), Linux {platform.release()}; "
        f"Python {platform.python_version()}; redis-server {redis_version.group(1) if redis_version else '?'}; {libs}"
    )


def _details(results: Results) -> list[str]:
    out = ["## Every repetition", ""]
    for measurement, by_system in results.items():
        for key, samples in by_system.items():
            figures = "; ".join(
                ", ".join(
                    f"{k} {v:,.3g}" if abs(v) < 100 else f"{k} {v:,.0f}"
                    for k, v in {**s.values, **s.detail}.items()
                    if isinstance(v, float | int)
                )
                for s in samples
            )
            out.append(f"- {measurement}, {key}: {figures}")
    for measurement, title, unit in (("commands", "Redis commands per job", "per job"), ("idle", "Idle load", "/s")):
        if measurement not in results:
            continue
        out += ["", f"## {title}, by command (median repetition)", ""]
        for key, samples in results[measurement].items():
            if not samples:
                continue
            value = "per_job" if measurement == "commands" else "cmds_s"
            chosen = sorted(samples, key=lambda s: s.values[value])[len(samples) // 2]
            parts = [f"{name} {n:.2f}" for name, n in list(chosen.detail["breakdown"].items())[:14]]
            net = chosen.detail.get("net_of_idle")
            extra = (
                ""
                if net is None
                else f"; {net:.2f} per job without the worker's idle traffic ({chosen.detail['idle_per_s']:.1f}/s "
                "measured over the 1 s before the run)"
            )
            out.append(f"- {key} ({chosen.values[value]:.2f} {unit}{extra}): " + ", ".join(parts))
    for key, all_samples in results.get("workflows", {}).items():
        samples = [s for s in all_samples if "cmds_ratio" in s.values]  # only jobq runs a workflow
        if not samples:
            continue
        chosen = sorted(samples, key=lambda s: s.values["cmds_ratio"])[len(samples) // 2]
        out += ["", "## Workflow commands per job, by command (median repetition)", ""]
        for side, figure, name in (
            ("chord", "member_cmds", "chord, per member"),
            ("plain", "plain_cmds", "plain jobs"),
        ):
            parts = [f"{cmd} {n:.2f}" for cmd, n in list(chosen.detail[f"{side}_breakdown"].items())[:14]]
            out.append(f"- {key}, {name} ({chosen.values[figure]:.2f}): " + ", ".join(parts))
    return out


def document(
    results: Results, *, sizes: dict[str, object], repeats: int, elapsed_s: float, when: str, errors: list[str]
) -> str:
    """The whole of RESULTS.md."""
    methods = {k: v.format(**sizes) for k, v in METHODS.items()}
    lines = [
        "# jobq benchmarks",
        "",
        f"Run {when} by `make bench` (`python -m bench`) in {elapsed_s:.0f} s; each figure is the median of "
        f"{repeats} repetition{'s' if repeats > 1 else ''}; jobq at commit `{revision()}`.",
        "",
        f"Machine: {machine()}. One embedded redis-server on loopback for the whole run (no persistence), "
        "flushed between measurements; every worker is its own OS process.",
        "",
        table(results),
        "",
        "Notes: ratios are jobq's figure divided by arq's, whatever the unit: above 1 is better for rates, below "
        "1 is better for latency, time, commands, load and memory. *arq (default)* is `arq.worker.Worker` with "
        "its defaults (poll_delay 0.5 s, max_jobs 10, asyncio loop); *arq tuned* adds poll_delay 0.01 s, "
        "max_jobs 100 and uvloop. jobq runs with its defaults (log level INFO: one log line per finished job, "
        "written to a file; poll delay and heartbeat interval unset) except `JOBQ_MAX_JOBS` (100, or 200 for "
        "the I/O-bound run); arq logs as its CLI does (INFO). Workers' output goes to a file each.",
        "",
        "## Method",
        "",
    ]
    titles = {
        "enqueue": "Enqueue, one await per job",
        "batch": "Batch enqueue",
        "drain1": "No-op drain, 1 worker process",
        "drain2": "No-op drain, 2 worker processes",
        "io": "I/O-bound efficiency",
        "pickup": "Pickup latency",
        "commands": "Redis commands per job",
        "drain_commands": "Redis commands per job, pre-filled drain",
        "idle": "Idle load",
        "rss": "Worker peak RSS",
        "fleet": "Fleet sweep",
        "startup": "Start-up",
        "imports": "A task module's import",
        "flow": "Queues and flow control",
        "rate": "Rate limit",
        "workflows": "Workflows",
    }
    for key, title in titles.items():
        lines += [f"- **{title}.** {methods[key]}"]
    lines += [
        "",
        "In the lists below, `all_jobs_s` is a drain's N divided by first start to last finish (no correction for "
        "a process still starting), `max_ms` the largest pickup latency, `net_of_idle` commands per job without the "
        "worker's idle traffic.",
        "",
        *_details(results),
    ]
    if errors:
        lines += ["", "## Failures", "", *(f"- {e}" for e in errors)]
    return "\n".join(lines) + "\n"
